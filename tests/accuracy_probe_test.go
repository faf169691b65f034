//go:build accuracy

package tests

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"timegate/internal/sockstamp"
	"timegate/ntp"
	"timegate/tests/harness"
)

// probe is a plain NTP client measuring every server the same way: T1 read just before
// the send, T4 the kernel's receive timestamp, one socket for all. It also takes the
// kernel's transmit timestamp of each request, a second T1 as a chronyd client takes
// it: the first includes the probe's own send path in the request's leg (as ntpdate or
// sntp would), the second leaves only the kernel's, so that whatever asymmetry it sees
// is the server's.
type probe struct {
	conn *net.UDPConn
	buf  []byte
	oob  []byte
}

// probeReply is what one exchange measured.
type probeReply struct {
	offset, delay float64
	// out and back are the two legs, T2 − T1 and T4 − T3, in seconds of served time
	// minus system time: their difference tells which way a slow exchange was slow.
	out, back     float64
	stratum, leap uint8
	// offsetK is the offset with the kernel's T1; okK is false when its stamp was missing.
	offsetK float64
	okK     bool
	// sendPath is the kernel's T1 less the probe's: its own send path, in seconds.
	sendPath float64
}

// newProbe opens the probe's socket in network namespace ns ("" = this one): the socket
// keeps the namespace it was made in, whatever thread uses it later.
func newProbe(t *testing.T, ns string) *probe {
	var conn *net.UDPConn
	var err error
	if ns == "" {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	} else {
		conn, err = harness.ListenUDPInNetns(ns, &net.UDPAddr{})
	}
	if err != nil {
		t.Fatalf("probe socket: %v", err)
	}
	if err := sockstamp.Enable(conn); err != nil {
		t.Fatalf("probe: kernel receive timestamps: %v", err)
	}
	if err := sockstamp.EnableTx(conn); err != nil {
		t.Fatalf("probe: kernel transmit timestamps: %v", err)
	}
	return &probe{conn: conn, buf: make([]byte, 1024), oob: make([]byte, sockstamp.OOBSize)}
}

func (p *probe) Close() error { return p.conn.Close() }

// warm makes one exchange and forgets it: the path through the probe's own stack is
// then warm for the exchanges that count.
func (p *probe) warm(addr string) { p.exchange(addr) }

// exchange sends one mode-3 request to addr and returns the RFC 5905 offset and delay.
func (p *probe) exchange(addr string) (probeReply, error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return probeReply{}, err
	}
	var req [ntp.HeaderLen]byte
	req[0] = 4<<3 | 3
	var nonce [8]byte
	rand.Read(nonce[:])
	copy(req[40:], nonce[:])
	p.conn.SetReadDeadline(time.Now().Add(time.Second))
	t1 := time.Now()
	if _, err := p.conn.WriteToUDP(req[:], ua); err != nil {
		return probeReply{}, err
	}
	for {
		n, oobn, _, from, err := p.conn.ReadMsgUDP(p.buf, p.oob)
		if err != nil {
			return probeReply{}, err
		}
		t4, ok := sockstamp.Time(p.oob[:oobn])
		if !ok {
			t4 = time.Now()
		}
		if n < ntp.HeaderLen || !from.IP.Equal(ua.IP) || from.Port != ua.Port || string(p.buf[24:32]) != string(nonce[:]) {
			continue // a straggler of an earlier probe
		}
		pivot := t1
		t2 := ntp.Time64(binary.BigEndian.Uint64(p.buf[32:40])).Time(pivot)
		t3 := ntp.Time64(binary.BigEndian.Uint64(p.buf[40:48])).Time(pivot)
		if t3.IsZero() {
			return probeReply{}, errors.New("zero transmit timestamp")
		}
		r := probeReply{
			offset:  (t2.Sub(t1) + t3.Sub(t4)).Seconds() / 2,
			delay:   (t4.Sub(t1) - t3.Sub(t2)).Seconds(),
			out:     t2.Sub(t1).Seconds(),
			back:    t4.Sub(t3).Seconds(),
			stratum: p.buf[1],
			leap:    p.buf[0] >> 6,
		}
		// The stamp is queued by the time the reply is in: on loopback and veth it is
		// taken before the request leaves the sending CPU.
		if t1k, err := sockstamp.TxTime(p.conn); err == nil && !t1k.Before(t1) && t1k.Before(t4) {
			r.offsetK, r.okK = (t2.Sub(t1k)+t3.Sub(t4)).Seconds()/2, true
			r.sendPath = t1k.Sub(t1).Seconds()
		}
		return r, nil
	}
}
