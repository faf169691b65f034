package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timegate/internal/secfile"
)

// serveTLS runs a TLS 1.3 server on loopback that takes its certificate
// from s, completes the handshake, writes one byte and closes. Any
// server-side handshake failure fails the test.
func serveTLS(t *testing.T, s *Store) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion:             tls.VersionTLS13,
		GetCertificate:         s.GetCertificate,
		SessionTicketsDisabled: true, // as NTS-KE: every handshake is a full one
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(20 * time.Second))
				if err := conn.(*tls.Conn).Handshake(); err != nil {
					t.Errorf("server handshake: %v", err)
					return
				}
				conn.Write([]byte{1})
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// handshake connects as a verifying TLS 1.3 client for "localhost" and
// returns the fingerprint of the certificate the server presented.
func handshake(addr string, roots *x509.CertPool) ([32]byte, error) {
	d := &net.Dialer{Timeout: 20 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    roots,
		ServerName: "localhost",
	})
	if err != nil {
		return [32]byte{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	// Reading the server's byte proves its side of the handshake finished
	// too (in TLS 1.3 the client is done first).
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw), nil
}

// The property the Store exists for: real TLS 1.3 handshakes run while an
// operator replaces the files over and over, certificate first and key
// later (so for a while a new certificate sits beside the old key), and
// while Reload (SIGHUP) and Watch race each other. No handshake fails, a
// half-replaced pair is never served, and clients do see the new ones.
func TestHandshakesDuringRotation(t *testing.T) {
	now := time.Now() // the client checks validity with the real clock
	var pairs []pair
	for _, kind := range []string{"p256", "ed25519", "p384", "rsa2048"} {
		pairs = append(pairs, makePair(t, kind, now.Add(-time.Hour), now.Add(time.Hour)))
	}
	roots := rootsOf(pairs...)
	certFile, keyFile := files(t, t.TempDir(), pairs[0])
	s, err := NewStore(certFile, keyFile, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, s)

	ctx, cancel := context.WithCancel(t.Context())
	var watchEvents, watchSwaps atomic.Int64
	var bg sync.WaitGroup
	bg.Go(func() {
		s.Watch(ctx, time.Millisecond, func(e Event) {
			watchEvents.Add(1)
			if e.Changed {
				watchSwaps.Add(1)
			}
		})
	})

	const clients, perClient = 2, 150
	var failed atomic.Int64
	var mu sync.Mutex
	seen := map[[32]byte]int{}
	var cg sync.WaitGroup
	start := time.Now()
	for range clients {
		cg.Go(func() {
			for range perClient {
				fp, err := handshake(addr, roots)
				if err != nil {
					if failed.Add(1) <= 3 {
						t.Errorf("client handshake: %v", err)
					}
					continue
				}
				mu.Lock()
				seen[fp]++
				mu.Unlock()
			}
		})
	}
	clientsDone := make(chan struct{})
	go func() { cg.Wait(); close(clientsDone) }()

	var rotations int
	var last pair
rotate:
	for i := 1; ; i++ {
		select {
		case <-clientsDone:
			break rotate
		default:
		}
		p := pairs[i%len(pairs)]
		writeFile(t, certFile, p.cert, 0o644)
		if _, err := s.Reload(); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("rotation %d: Reload with only the certificate new = %v, want ErrKeyMismatch", i, err)
		}
		time.Sleep(3 * time.Millisecond) // handshakes and Watch polls run in this window
		if i%2 == 0 {
			writeFile(t, keyFile, p.key, 0o600) // in place: readers may see it truncated
		} else if err := secfile.WriteAtomic(keyFile, p.key, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Reload(); err != nil {
			t.Fatalf("rotation %d: Reload of a complete pair: %v", i, err)
		}
		if servedFP(t, s) != fingerprint(p) {
			t.Fatalf("rotation %d: new pair not served", i)
		}
		rotations, last = i, p
		time.Sleep(3 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	bg.Wait()

	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d handshakes failed", n, clients*perClient)
	}
	if rotations < len(pairs) {
		t.Fatalf("only %d rotations during the handshakes", rotations)
	}
	if len(seen) < 2 {
		t.Fatalf("clients saw %d distinct certificates across %d rotations", len(seen), rotations)
	}
	if fp, err := handshake(addr, roots); err != nil || fp != fingerprint(last) {
		t.Fatalf("after rotation: handshake %v, new certificate served: %v", err, fp == fingerprint(last))
	}
	t.Logf("%d handshakes in %v, %d rotations, %d certificates seen, Watch: %d events, %d swaps",
		clients*perClient, elapsed.Round(time.Millisecond), rotations, len(seen), watchEvents.Load(), watchSwaps.Load())
}
