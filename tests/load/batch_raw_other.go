//go:build linux && !(amd64 || arm64)

package main

import "syscall"

// writeRaw sends the batch on a blocking raw socket, one write per datagram.
func writeRaw(fd int, b *batch, n int) (int, error) {
	for i := range n {
		if _, err := syscall.Write(fd, b.bufs[i][:b.lens[i]]); err != nil {
			return i, err
		}
	}
	return n, nil
}
