package metrics

import "sync"

// owners counts, per label set, the owners that report it on: a 0/1
// gauge that several owners in one process share (an HTTP and a gRPC
// client of one service, every Failover of it) is 1 while any has it on.
// Set by the last to report instead, one owner's start or stop overwrote
// another's value (audit m4). The zero value is ready to use.
type owners[K comparable] struct {
	mu sync.Mutex
	n  map[K]int // absent at 0
}

// report counts one more owner of k when on, one fewer (none below 0)
// when not, and calls set with whether any is left; set runs under the
// lock, so the gauge's sets keep the counts' order.
func (o *owners[K]) report(k K, on bool, set func(any bool)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.n[k]
	switch {
	case on:
		n++
	case n > 0:
		n--
	}
	if n == 0 {
		delete(o.n, k)
	} else {
		if o.n == nil {
			o.n = map[K]int{}
		}
		o.n[k] = n
	}
	set(n > 0)
}
