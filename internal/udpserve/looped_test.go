package udpserve

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

// FuzzLoopedPayload: whatever the kernel (or a bug) puts in the error
// queue, the payload found is nil or lies inside the packet, after at
// least a UDP header.
func FuzzLoopedPayload(f *testing.F) {
	udp := []byte{0, 123, 0x9c, 0x40, 0, 56, 0, 0}
	ntpHdr := make([]byte, 48)
	ip4 := []byte{0x45, 0, 0, 76, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1}
	ip6 := make([]byte, 40)
	ip6[0], ip6[6] = 0x60, 17
	eth4 := binary.BigEndian.AppendUint16(make([]byte, 12), 0x0800)
	eth6 := binary.BigEndian.AppendUint16(make([]byte, 12), 0x86dd)
	f.Add(append(append(append(eth4, ip4...), udp...), ntpHdr...))
	f.Add(append(append(append(eth6, ip6...), udp...), ntpHdr...))
	f.Add(append(append(append([]byte{}, ip4...), udp...), ntpHdr...))
	hop := append([]byte{}, ip6...)
	hop[6] = 0
	f.Add(append(append(append(append(eth6, hop...), 17, 0, 0, 0, 0, 0, 0, 0), udp...), ntpHdr...))
	f.Add([]byte{0x81, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := loopedPayload(b)
		if p == nil {
			return
		}
		if len(b) == 0 || len(p) > len(b)-8 {
			t.Fatalf("payload of %d octets from a %d-octet packet", len(p), len(b))
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		if len(p) > 0 {
			at := uintptr(unsafe.Pointer(&p[0]))
			if at < start+8 || at+uintptr(len(p)) > start+uintptr(len(b)) {
				t.Fatalf("payload outside the packet")
			}
		}
	})
}
