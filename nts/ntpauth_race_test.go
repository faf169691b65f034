//go:build race

package nts

// raceEnabled is set because sync.Pool discards a quarter of Put items at
// random under the race detector, which makes allocation counts meaningless.
const raceEnabled = true
