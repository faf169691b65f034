//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le))

package sockstamp

import (
	"errors"
	"net"
	"time"
)

// OOBSize is 0: no kernel timestamps on this platform.
const OOBSize = 0

// Enable asks the kernel to timestamp every datagram c receives.
func Enable(*net.UDPConn) error { return errors.New("not supported") }

func Time([]byte) (time.Time, bool) { return time.Time{}, false }

// ErrNoTxStamp: the error queue holds no transmit timestamp (yet).
var ErrNoTxStamp = errors.New("sockstamp: no transmit timestamp queued")

// EnableTx asks for transmit timestamps: not on this platform.
func EnableTx(*net.UDPConn) error { return errors.New("not supported") }

// TxTime reads the last transmit timestamp: never on this platform.
func TxTime(*net.UDPConn) (time.Time, error) { return time.Time{}, ErrNoTxStamp }
