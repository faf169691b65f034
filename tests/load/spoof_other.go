//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

// runSpoof needs Linux raw sockets with IP_HDRINCL semantics.
func runSpoof(context.Context, Config, io.Writer) (*Result, error) {
	return nil, errors.New("load: -mode spoof is implemented for Linux only")
}
