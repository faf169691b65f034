//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le))

package udpserve

import (
	"errors"
	"net"
	"time"
)

const oobSize = 0

func enableTimestamps(*net.UDPConn) error { return errors.New("not supported") }

func kernelTime([]byte) (time.Time, bool) { return time.Time{}, false }
