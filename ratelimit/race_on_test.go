//go:build race

package ratelimit

// raceEnabled shortens the long flood tests under the race detector, which
// slows Allow twentyfold; the full runs stay in the normal test.
const raceEnabled = true
