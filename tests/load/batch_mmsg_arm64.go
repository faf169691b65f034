//go:build linux

package main

// System call numbers on linux/arm64 (the generic table).
const (
	sysSendmmsg = 269
	sysRecvmmsg = 243
)
