package main

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// TestBatchRoundTrip: one Send of a full batch delivers every datagram with
// its own length and content, and Recv returns them (in batches) intact.
func TestBatchRoundTrip(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	sb := newBatch(sendBatch, 64)
	for i := range sb.bufs {
		sb.lens[i] = copy(sb.bufs[i], fmt.Sprintf("datagram %d", i))
	}
	su, err := newUDPBatcher(tx, sb)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := su.Send(sendBatch); n != sendBatch || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	rb := newBatch(7, 64) // smaller than what was sent: several Recv calls
	ru, err := newUDPBatcher(rx, rb)
	if err != nil {
		t.Fatal(err)
	}
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []string
	for len(got) < sendBatch {
		n, err := ru.Recv()
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		for i := range n {
			got = append(got, string(rb.bufs[i][:rb.lens[i]]))
		}
	}
	for i, g := range got {
		if want := fmt.Sprintf("datagram %d", i); g != want {
			t.Errorf("datagram %d = %q, want %q", i, g, want)
		}
	}
	// With nothing left, Recv waits for the deadline and says so.
	rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := ru.Recv(); err == nil {
		t.Fatalf("Recv on an empty socket returned %d datagrams", n)
	}
}
