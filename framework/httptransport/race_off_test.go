//go:build !race

package httptransport

const raceOn = false
