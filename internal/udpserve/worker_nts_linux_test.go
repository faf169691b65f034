//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/ntp"
	"timegate/nts"
)

// countingNTS passes to nts.Server and records the sizes of the batches
// the worker hands it.
type countingNTS struct {
	*nts.Server
	mu    sync.Mutex
	sizes []int
}

func (c *countingNTS) RespondBatch(jobs []ntp.NTSJob) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(jobs))
	c.mu.Unlock()
	c.Server.RespondBatch(jobs)
}

// TestWorkerNTSBatch: NTS requests queued on the socket before the worker
// starts arrive in one recvmmsg; the worker answers them in chunks through
// RespondBatch, beside plain requests answered at once: every good NTS
// request gets a reply its client authenticates, a tampered one or one
// with a flipped cookie gets nothing or a NAK, every plain one its reply.
func TestWorkerNTSBatch(t *testing.T) {
	conns, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	handler := &countingNTS{Server: &nts.Server{Ring: func() *nts.KeyRing { return ring }}}
	st := &ntp.ServedState{Stratum: 3, RefID: 0x7f7f0101}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }, NTS: handler}
	stats := &Stats{}
	srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: stats, Log: zaptest.NewLogger(t)}
	dst := conns[0].LocalAddr().(*net.UDPAddr).AddrPort()

	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type sent struct {
		s    *nts.ClientSession
		uid  []byte
		kind string // good, tampered, nak, plain
	}
	byNonce := map[uint64]sent{}
	for i := range 30 {
		nonce := uint64(0x1000 + i)
		kind := []string{"good", "good", "good", "tampered", "nak", "plain"}[i%6]
		if kind == "plain" {
			if _, err := c.WriteToUDPAddrPort(ntp.ClientRequest(nil, 4, 3, ntp.Time64(nonce)), dst); err != nil {
				t.Fatal(err)
			}
			byNonce[nonce] = sent{kind: kind}
			continue
		}
		ck := nts.Cookie{AEAD: nts.AEADAESSIVCMAC256}
		rand.Read(ck.C2S[:])
		rand.Read(ck.S2C[:])
		res := &nts.KEResult{AEAD: nts.AEADAESSIVCMAC256, C2S: ck.C2S[:], S2C: ck.S2C[:]}
		cookie, err := ring.SealCookie(nil, ck, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		res.Cookies = [][]byte{cookie}
		s, err := nts.NewClientSession(res)
		if err != nil {
			t.Fatal(err)
		}
		uid := make([]byte, 32)
		binary.BigEndian.PutUint64(uid, nonce)
		req, err := s.BuildRequest(nil, ntp.Time64(nonce), uid, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		switch kind {
		case "tampered":
			req[len(req)-20] ^= 1
		case "nak":
			off := bytes.Index(req, cookie)
			req[off+40] ^= 1
		}
		if _, err := c.WriteToUDPAddrPort(req, dst); err != nil {
			t.Fatal(err)
		}
		byNonce[nonce] = sent{s: s, uid: uid, kind: kind}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	got := map[string]int{}
	buf := make([]byte, 2048)
	for {
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		h, err := ntp.DecodeHeader(buf[:n])
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		r, ok := byNonce[uint64(h.Origin)]
		if !ok {
			t.Fatalf("reply to an origin never sent: %x", h.Origin)
		}
		switch r.kind {
		case "good":
			if _, err := r.s.ProcessReply(buf[:n], r.uid); err != nil {
				t.Fatalf("good request: reply does not authenticate: %v", err)
			}
		case "nak":
			if h.Stratum != 0 || h.RefID != uint32(ntp.KissNTSN) {
				t.Fatalf("flipped cookie: reply stratum %d refid %x, want an NTSN kiss", h.Stratum, h.RefID)
			}
		case "tampered":
			t.Fatal("a tampered request was answered")
		}
		got[r.kind]++
	}
	if got["good"] != 15 || got["nak"] != 5 || got["plain"] != 5 || got["tampered"] != 0 {
		t.Fatalf("replies by kind %v, want 15 good, 5 nak, 5 plain", got)
	}
	handler.mu.Lock()
	defer handler.mu.Unlock()
	total, most := 0, 0
	for _, n := range handler.sizes {
		total += n
		most = max(most, n)
	}
	if total != 25 || most != ntsChunk {
		t.Fatalf("RespondBatch got batches %v: want the 25 NTS requests in chunks of up to %d", handler.sizes, ntsChunk)
	}
}
