//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le))

package reqsock

import (
	"errors"
	"net/netip"
	"syscall"
	"time"
)

// Set is never made on this platform: New fails and the engine requests
// through net.
type Set struct{}

// ErrUnsupported: no raw request sockets on this platform.
var ErrUnsupported = errors.New("reqsock: not supported on this platform")

func New() (*Set, error) { return nil, ErrUnsupported }

func (*Set) Open(netip.AddrPort) (int, bool, error)           { return -1, false, ErrUnsupported }
func (*Set) Send(int, []byte) error                           { return ErrUnsupported }
func (*Set) TxTime(int) (time.Time, bool)                     { return time.Time{}, false }
func (*Set) Watch(int) error                                  { return ErrUnsupported }
func (*Set) Release(int)                                      {}
func (*Set) Recv(int, []byte) (int, time.Time, syscall.Errno) { return 0, time.Time{}, syscall.EINVAL }
func (*Set) Ready(dst []int) []int                            { return dst }
func (*Set) Wait() error                                      { return ErrUnsupported }
func (*Set) Close() error                                     { return nil }
