//go:build !race

package symkey

const raceEnabled = false
