package tests

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"timegate/ntp"
)

// marker is a recognisable transmit timestamp for case i.
func marker(i int) ntp.Time64 { return ntp.Time64(0x4841_5354_0000_0000 | uint64(i)<<8 | 1) }

// request is a client request (version vn, mode m) with transmit marker(i).
func request(i int, vn, m uint8) []byte {
	b := ntp.ClientRequest(nil, 4, 0, marker(i))
	b[0] = vn<<3 | m
	return b
}

// field is one raw extension field: type, the Length word as given (which
// may lie), then body.
func field(typ, length uint16, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, length)
	return append(b, body...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// ntpCases are the attacks on plain NTP: every length, every version and
// mode, monlist, extension-field framing, access policy.
func ntpCases(h *hostile) []udpCase {
	var cs []udpCase
	cs = append(cs, lengthCases()...)
	cs = append(cs, versionModeCases()...)
	cs = append(cs, extFieldCases()...)
	cs = append(cs, policyCases()...)
	return cs
}

// lengthCases: every datagram length from 0 to 1100 octets, a client header
// padded (or cut) with zeros. Only the bare 48-octet header is a request;
// 52 is a crypto-NAK trailer, 68 and 72 a MAC with key ID 0, and every
// other zero tail is a malformed extension field or too long to parse.
func lengthCases() []udpCase {
	var cs []udpCase
	for n := 0; n <= 1100; n++ {
		full := append(request(n, 4, 3), make([]byte, max(n-ntp.HeaderLen, 0))...)
		want := noReply
		if n == ntp.HeaderLen {
			want = timeReply
		}
		cs = append(cs, udpCase{name: fmt.Sprintf("length %d", n), req: full[:n], want: want})
	}
	return cs
}

// versionModeCases: versions 0-7 × modes 0-7. Versions 1 to 4 in mode 3
// get time in their own version, and in mode 1 (symmetric active, as
// w32time polls) a stateless mode 2 answer where the rule lacks nopeer;
// version 0 and 5-7 are dropped, as is every other mode: symmetric passive
// (2), server (4), broadcast (5), control (6, ntpq's readvar and mrulist)
// and private (7, ntpdc's monlist, the amplification of CVE-2013-5211).
func versionModeCases() []udpCase {
	var cs []udpCase
	for vn := uint8(0); vn < 8; vn++ {
		for m := uint8(0); m < 8; m++ {
			i := 2000 + int(vn)*8 + int(m)
			want := noReply
			switch {
			case vn < 1 || vn > 4:
			case m == 3:
				want = timeReply
			case m == 1:
				want = peerReply
			}
			cs = append(cs, udpCase{name: fmt.Sprintf("version %d mode %d", vn, m), req: request(i, vn, m), want: want})
		}
	}
	// monlist as ntpdc sends it: 8 octets, then padded to 48 and to 192.
	monlist := []byte{0x17, 0x00, 0x03, 0x2a, 0, 0, 0, 0}
	for _, n := range []int{8, 48, 192} {
		cs = append(cs, udpCase{name: fmt.Sprintf("monlist %d octets", n), req: append(monlist[:8:8], make([]byte, n-8)...)})
	}
	// ntpq readvar and mrulist (mode 6): no control answers at all.
	cs = append(cs,
		udpCase{name: "mode 1 from a nopeer source", src: srcNoPeer, req: request(2100, 4, 1)},
		udpCase{name: "mode 3 from a nopeer source", src: srcNoPeer, req: request(2101, 4, 3), want: timeReply},
		udpCase{name: "mode 6 readvar", req: cat([]byte{0x26, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 36))},
		udpCase{name: "mode 6 mrulist", req: cat([]byte{0x26, 0x0a, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 36))},
	)
	return cs
}

// extFieldCases: RFC 7822 framing, lied about in every way.
func extFieldCases() []udpCase {
	base := func(i int) []byte { return request(i, 4, 3) }
	body := func(n int) []byte { return make([]byte, n) }
	cases := []struct {
		name string
		tail []byte
		want outcomeKind
	}{
		{"unknown field, 28 octets", field(0x2005, 28, body(24)), timeReply},
		{"unknown field, 16 octets, last without MAC", field(0x2005, 16, body(12)), noReply},
		{"two unknown fields", cat(field(0x2005, 16, body(12)), field(0x2006, 28, body(24))), timeReply},
		{"28 unknown fields", repeatField(28), timeReply},
		{"33 unknown fields", repeatField(33), noReply},
		{"length 0", field(0x2005, 0, body(24)), noReply},
		{"length 3", field(0x2005, 3, body(24)), noReply},
		{"length 4 (header only)", field(0x2005, 4, body(24)), noReply},
		{"length not a multiple of 4", field(0x2005, 30, body(26)), noReply},
		{"length past the datagram", field(0x2005, 64, body(24)), noReply},
		{"length 0xffff", field(0x2005, 0xffff, body(24)), noReply},
		{"overlapping: first ends inside the second's header", cat(field(0x2005, 18, body(12)), field(0x2006, 28, body(24))), noReply},
		{"misaligned: 2 octets after the last field", cat(field(0x2005, 28, body(24)), body(2)), noReply},
		{"huge field: 1020 octets, datagram 1068", field(0x2005, 1020, body(1016)), noReply},
		{"field of 972 octets, datagram 1020", field(0x2005, 972, body(968)), timeReply},
		{"extension field in NTPv3", nil, noReply},
		{"MAC-sized tail after a field", cat(field(0x2005, 28, body(24)), body(20)), noReply},
	}
	var cs []udpCase
	for i, c := range cases {
		req := append(base(3000+i), c.tail...)
		if c.name == "extension field in NTPv3" {
			req = append(request(3000+i, 3, 3), field(0x2005, 28, body(24))...)
		}
		cs = append(cs, udpCase{name: "EF " + c.name, req: req, want: c.want})
	}
	return cs
}

func repeatField(n int) []byte {
	var b []byte
	for i := range n {
		l := uint16(16)
		if i == n-1 {
			l = 28
		}
		b = append(b, field(0x2005, l, make([]byte, l-4))...)
	}
	return b
}

// policyCases: what each restrict rule answers, and the RATE kiss that
// `ratelimit ... kod` alone must send (campaign finding).
func policyCases() []udpCase {
	cs := []udpCase{
		{name: "noserve kod: DENY", src: srcDeny, req: request(4000, 4, 3), want: kissReply, kiss: ntp.KissDENY},
		{name: "require-auth kod, unauthenticated: RSTR", src: srcAuthOnly, req: request(4001, 4, 3), want: kissReply, kiss: ntp.KissRSTR},
		{name: "ignore: silence", src: srcIgnored, req: request(4002, 4, 3)},
	}
	return cs
}

// runRate: campaign finding, `ratelimit ... kod` without any `restrict ...
// kod` sent no RATE kiss. srcLimited's rule has no kod: after its burst of
// 2, an over-limit request gets a RATE kiss (or, 1 in 16, a leaked answer
// first), sent one at a time so that the order is known.
func (h *hostile) runRate(t *testing.T) {
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(srcLimited)}, &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: h.ntpPort})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 1024)
	ask := func(i int) []byte {
		req := request(7000+i, 4, 3)
		conn.Write(req)
		conn.SetReadDeadline(time.Now().Add(quietWait))
		n, err := conn.Read(buf)
		if err != nil {
			return nil
		}
		if n > len(req) {
			t.Fatalf("reply of %d octets to %d", n, len(req))
		}
		return buf[:n]
	}
	for i := range 2 {
		if msg := judge(udpCase{req: request(7000+i, 4, 3), want: timeReply}, ask(i)); msg != "" {
			t.Fatalf("request %d of the burst: %s", i+1, msg)
		}
	}
	for i := 2; i < 8; i++ {
		reply := ask(i)
		if reply == nil {
			t.Fatalf("over-limit request %d: dropped before any RATE kiss", i+1)
		}
		if rh, _ := ntp.DecodeHeader(reply); rh.Stratum == 0 {
			if code, _ := ntp.IsKiss(&rh); code != ntp.KissRATE {
				t.Fatalf("kiss %v, want RATE", code)
			}
			return
		}
	}
	t.Fatal("no RATE kiss within 6 over-limit requests")
}
