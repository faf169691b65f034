//go:build race

package udpserve

// raceEnabled skips allocation counts: the race detector allocates on its own.
const raceEnabled = true
