//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package sockstamp

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cmsg is one control message as the kernel lays it out on 64-bit Linux,
// padded to 8 octets.
func cmsg(level, typ int32, data []byte) []byte {
	l := unix.SizeofCmsghdr + len(data)
	b := make([]byte, (l+7)&^7)
	binary.NativeEndian.PutUint64(b[0:], uint64(l))
	binary.NativeEndian.PutUint32(b[8:], uint32(level))
	binary.NativeEndian.PutUint32(b[12:], uint32(typ))
	copy(b[unix.SizeofCmsghdr:], data)
	return b
}

func timespecs(ts ...time.Time) []byte {
	var b []byte
	for _, t := range ts {
		b = binary.NativeEndian.AppendUint64(b, uint64(t.Unix()))
		b = binary.NativeEndian.AppendUint64(b, uint64(t.Nanosecond()))
	}
	return b
}

// TestTxStampParsing: the software stamp is the first of SCM_TIMESTAMPING's
// three, found after other messages (the error queue's IP_RECVERR); an
// all-zero one is no stamp.
func TestTxStampParsing(t *testing.T) {
	at := time.Unix(1_800_000_000, 123_456_789)
	ee := cmsg(unix.SOL_IP, unix.IP_RECVERR, make([]byte, 16))
	ok := append(append([]byte(nil), ee...), cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPING, timespecs(at, time.Unix(0, 0), time.Unix(0, 0)))...)
	if got, found := TxStamp(ok); !found || !got.Equal(at) {
		t.Fatalf("TxStamp = %v, %v; want %v", got, found, at)
	}
	zero := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPING, make([]byte, 48))
	if _, found := TxStamp(zero); found {
		t.Error("an all-zero SCM_TIMESTAMPING parsed as a stamp")
	}
	if _, found := TxStamp(ok[:len(ok)-8]); found {
		t.Error("a truncated SCM_TIMESTAMPING parsed")
	}
	rx := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespecs(at))
	if got, found := Time(rx); !found || !got.Equal(at) {
		t.Fatalf("Time = %v, %v; want %v", got, found, at)
	}
}

// FuzzParseStamps: neither parser reads outside the buffer or panics on any
// control-message buffer, and a stamp found is one of the buffer's
// timespecs.
func FuzzParseStamps(f *testing.F) {
	at := time.Unix(1_800_000_000, 5)
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespecs(at)))
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPING, timespecs(at, at, at)))
	f.Add(append(cmsg(unix.SOL_IP, unix.IP_RECVERR, make([]byte, 16)), cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPING, timespecs(at, at, at))...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 35, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, oob []byte) {
		for _, parse := range []func([]byte) (time.Time, bool){Time, TxStamp} {
			got, ok := parse(oob)
			if !ok {
				continue
			}
			found := false
			for i := 0; i+16 <= len(oob); i += 8 {
				sec := int64(binary.NativeEndian.Uint64(oob[i:]))
				nsec := int64(binary.NativeEndian.Uint64(oob[i+8:]))
				if time.Unix(sec, nsec).Equal(got) {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("stamp %v is not a timespec of the buffer", got)
			}
		}
	})
}
