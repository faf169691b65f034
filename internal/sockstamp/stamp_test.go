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
