//go:build !(linux && (amd64 || arm64))

package main

import (
	"context"
	"errors"
	"io"
)

func runEcho(context.Context, Config, io.Writer) error {
	return errors.New("load: -mode echo needs recvmmsg/sendmmsg (Linux amd64 or arm64)")
}
