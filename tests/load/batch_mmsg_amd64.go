//go:build linux

package main

// System call numbers the syscall package does not name on linux/amd64.
const (
	sysSendmmsg = 307
	sysRecvmmsg = 299
)
