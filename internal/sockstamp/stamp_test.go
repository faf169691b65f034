package sockstamp

import (
	"net"
	"testing"
	"time"
)

func TestTimeParsing(t *testing.T) {
	if _, ok := Time(nil); ok {
		t.Error("empty control buffer parsed")
	}
	if _, ok := Time(make([]byte, 20)); ok {
		t.Error("zero-length cmsg parsed")
	}
}

// The kernel stamp of a loopback datagram lies between the send and the read.
func TestKernelStampOnLoopback(t *testing.T) {
	if OOBSize == 0 {
		t.Skip("no kernel timestamps on this platform (not a peer: nothing to install)")
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Enable(c); err != nil {
		t.Fatal(err)
	}
	s, err := net.DialUDP("udp", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := time.Now()
	s.Write([]byte("x"))
	buf, oob := make([]byte, 16), make([]byte, OOBSize)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	stamp, ok := Time(oob[:oobn])
	if !ok || stamp.Before(before.Add(-time.Millisecond)) || stamp.After(after) {
		t.Fatalf("kernel stamp %v (ok %v) not within [%v, %v]", stamp, ok, before, after)
	}
}

// The kernel's transmit stamp of a loopback datagram lies between the
// clock readings around the send.
func TestKernelTxStampOnLoopback(t *testing.T) {
	if OOBSize == 0 {
		t.Skip("no kernel timestamps on this platform (not a peer: nothing to install)")
	}
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := TxTime(c); err != ErrNoTxStamp {
		t.Fatalf("before any send: %v, want ErrNoTxStamp", err)
	}
	if err := Enable(c); err != nil {
		t.Fatal(err)
	}
	if err := EnableTx(c); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		before := time.Now()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		tx, err := TxTime(c)
		if err != nil || tx.Before(before) || tx.After(after) {
			t.Fatalf("transmit stamp %v (%v) not within [%v, %v]", tx, err, before, after)
		}
		if _, err := TxTime(c); err != ErrNoTxStamp {
			t.Fatalf("a second read of the queue: %v, want ErrNoTxStamp", err)
		}
	}
	// The receive side still gets its SO_TIMESTAMPNS stamp.
	buf, oob := make([]byte, 16), make([]byte, OOBSize)
	if err := Enable(srv); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("y"))
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, oobn, _, _, err := srv.ReadMsgUDP(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) == "y" {
			if _, ok := Time(oob[:oobn]); !ok {
				t.Fatal("no receive stamp")
			}
			break
		}
	}
}
