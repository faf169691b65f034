//go:build !linux

package udpserve

// Other systems' SO_REUSEPORT does not spread datagrams over a group (the
// BSDs deliver to the last socket bound), so one socket serves.
const reusePortSupported = false

func setReusePort(uintptr) error { return nil }
