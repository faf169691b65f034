//go:build !linux

package privdrop

import "errors"

// ErrCgo is never returned outside Linux.
var ErrCgo = errors.New("privdrop: cgo")

// Drop is Linux-only: elsewhere, start timegate as the user it should run as.
func Drop(Target, bool) error {
	return errors.New("privdrop: dropping privileges is supported on Linux only; start timegate as its own user")
}

// ClearCapabilities has nothing to clear outside Linux.
func ClearCapabilities() error { return nil }
