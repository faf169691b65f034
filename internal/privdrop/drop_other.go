//go:build !linux

package privdrop

import "errors"

// Drop is Linux-only: elsewhere, start timegate as the user it should run as.
func Drop(Target, bool) error {
	return errors.New("privdrop: dropping privileges is supported on Linux only; start timegate as its own user")
}
