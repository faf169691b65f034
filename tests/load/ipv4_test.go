package main

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"
)

func TestChecksumKnownVector(t *testing.T) {
	// The IPv4 header of the classic worked example (Wikipedia, "Internet
	// checksum"): 192.168.0.1 -> 192.168.0.199, UDP, TTL 64, DF; its
	// checksum field is b861.
	hdr, _ := hex.DecodeString("45000073" + "00004000" + "40110000" + "c0a80001" + "c0a800c7")
	if got := Checksum(hdr); got != 0xb861 {
		t.Fatalf("checksum = %#04x, want 0xb861", got)
	}
	binary.BigEndian.PutUint16(hdr[10:], 0xb861)
	if got := Checksum(hdr); got != 0 {
		t.Fatalf("a header with its checksum sums to %#04x, want 0", got)
	}
	// RFC 1071 §3's example words sum to ddf2; an odd trailing byte is
	// padded with zero.
	if got := Checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}); got != ^uint16(0xddf2) {
		t.Fatalf("RFC 1071 example: %#04x", got)
	}
	if Checksum([]byte{0xab}) != Checksum([]byte{0xab, 0x00}) {
		t.Fatal("odd length not padded with zero")
	}
}

func TestBuildSpoofed(t *testing.T) {
	b := make([]byte, 128)
	src, dst := [4]byte{127, 9, 8, 7}, [4]byte{127, 0, 0, 1}
	pkt := BuildSpoofed(b, src, dst, 40000, 1123, 77, 0x1122334455667788)
	if len(pkt) != 76 {
		t.Fatalf("length %d", len(pkt))
	}
	ip := pkt[:20]
	if ip[0] != 0x45 || binary.BigEndian.Uint16(ip[2:]) != 76 || binary.BigEndian.Uint16(ip[4:]) != 77 ||
		binary.BigEndian.Uint16(ip[6:]) != 0x4000 || ip[8] != 64 || ip[9] != 17 {
		t.Fatalf("IPv4 header %x", ip)
	}
	if [4]byte(ip[12:16]) != src || [4]byte(ip[16:20]) != dst {
		t.Fatalf("addresses %v -> %v", ip[12:16], ip[16:20])
	}
	if Checksum(ip) != 0 {
		t.Fatalf("header checksum does not verify: %x", ip)
	}
	udp := pkt[20:28]
	if binary.BigEndian.Uint16(udp[0:]) != 40000 || binary.BigEndian.Uint16(udp[2:]) != 1123 ||
		binary.BigEndian.Uint16(udp[4:]) != 56 || binary.BigEndian.Uint16(udp[6:]) != 0 {
		t.Fatalf("UDP header %x", udp)
	}
	want := make([]byte, ntpLen)
	BuildRequest(want, 0x1122334455667788)
	if string(pkt[28:]) != string(want) {
		t.Fatalf("payload %x", pkt[28:])
	}
}

// TestSourceWalk walks the whole of 127/8 once: MaxSources distinct, valid
// addresses, then the walk starts again from its first address.
func TestSourceWalk(t *testing.T) {
	seen := make([]uint64, walkSpace/64)
	var w SourceWalk
	first := w.Next()
	w = SourceWalk{}
	for i := range MaxSources {
		a := w.Next()
		h := uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		if a[0] != 127 || a[3] == 0 || a[3] == 255 || h == 1 {
			t.Fatalf("source %d: invalid address %v", i, netip.AddrFrom4(a))
		}
		if seen[h/64]&(1<<(h%64)) != 0 {
			t.Fatalf("source %d: %v repeated", i, netip.AddrFrom4(a))
		}
		seen[h/64] |= 1 << (h % 64)
	}
	if got := w.Next(); got != first {
		t.Fatalf("after %d sources the walk gave %v, want to start again at %v", MaxSources, netip.AddrFrom4(got), netip.AddrFrom4(first))
	}
	// Consecutive sources are spread out, not neighbours.
	w = SourceWalk{}
	a, b := w.Next(), w.Next()
	if a[1] == b[1] && a[2] == b[2] {
		t.Errorf("consecutive sources %v and %v share a /24", netip.AddrFrom4(a), netip.AddrFrom4(b))
	}
}

func TestLoopbackTarget(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:123", "127.3.4.5:1123", "[::1]:123", "[::ffff:127.0.0.1]:9", "198.18.0.1:123", "198.19.255.254:9"} {
		if _, err := loopbackTarget(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"192.0.2.1:123", "10.0.0.1:123", "198.17.255.255:123", "198.20.0.0:123", "[2001:db8::1]:123", "0.0.0.0:123", "127.0.0.1:0", "localhost:123", "127.0.0.1"} {
		if _, err := loopbackTarget(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestKESource(t *testing.T) {
	seen := map[[3]byte]bool{}
	for _, target := range []string{"127.0.0.1", "198.18.0.1"} {
		for i := range 8 {
			a := keSource(netip.MustParseAddr(target), i).As4()
			if seen[[3]byte{a[0], a[1], a[2]}] {
				t.Errorf("target %s client %d: /24 of %v already used", target, i, a)
			}
			seen[[3]byte{a[0], a[1], a[2]}] = true
			if target == "127.0.0.1" && a[0] != 127 || target != "127.0.0.1" && !benchNet.Contains(netip.AddrFrom4(a)) {
				t.Errorf("target %s client %d: source %v outside the target's network", target, i, a)
			}
		}
	}
}
