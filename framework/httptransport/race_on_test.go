//go:build race

package httptransport

// raceOn: the race detector drops a quarter of sync.Pool's Puts, so
// allocation counts are not pinned under it.
const raceOn = true
