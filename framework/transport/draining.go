package transport

import "context"

type drainingKey struct{}

// WithDraining returns ctx carrying ch, which a transport's server closes
// when its drain begins. Servers put it in the context of every call they
// serve; handlers read it with Draining.
func WithDraining(ctx context.Context, ch <-chan struct{}) context.Context {
	return context.WithValue(ctx, drainingKey{}, ch)
}

// Draining returns a channel closed when the server serving the call in
// ctx begins its drain (SIGTERM, after the withdraw and grace period). A
// long-lived call (a websocket, a stream, a long poll) selects on it to
// end on its own terms — a close frame, a last message — instead of
// holding the drain until --drain-timeout cuts it. Outside a call served
// by a Warren server it returns nil, which never fires in a select.
func Draining(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(drainingKey{}).(<-chan struct{})
	return ch
}
