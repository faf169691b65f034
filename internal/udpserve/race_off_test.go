//go:build !race

package udpserve

const raceEnabled = false
