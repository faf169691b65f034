//go:build race

package symkey

// raceEnabled is set because sync.Pool (behind CMAC Verify) discards items at
// random under the race detector, which makes allocation counts meaningless.
const raceEnabled = true
