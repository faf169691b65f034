//go:build !linux

package keproc

import (
	"errors"
	"os"

	"go.uber.org/zap"
)

func startChild(string, []*os.File, func(Failure), *zap.Logger) (*child, error) {
	return nil, errors.New("keproc: NTS-KE helper processes run on Linux only: set ntsprocesses 0")
}
