package kelisten

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With HandshakeSlots the public-key work of concurrent handshakes is
// bounded: GetCertificate, which runs inside it, is never entered by more
// sessions at once than there are slots, and every session completes.
func TestHandshakeSlotsBoundConcurrency(t *testing.T) {
	cert, _ := testCert(t)
	var inside, most atomic.Int32
	f := start(t, "127.0.0.1:0", func(c *Config) {
		c.HandshakeSlots = 2
		c.Server.Timeout = 5 * time.Second
		c.TLS.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond) // widen the window others could enter in
			inside.Add(-1)
			return &cert, nil
		}
	})
	f.pool.AddCert(cert.Leaf)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := f.exchange(t, "127.0.0."+string(rune('1'+i)), 10*time.Second)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := most.Load(); m > 2 || m < 1 {
		t.Fatalf("%d sessions did public-key work at once, want 1..2", m)
	}
	if n := len(f.l.gate); n != 0 {
		t.Fatalf("%d slots still held after every session ended", n)
	}
}

// A client that sends its ClientHello and then stalls holds no slot: the
// server gives it back when it writes its flight, so with one slot another
// client still completes NTS-KE at once.
func TestHandshakeSlotNotHeldByStalledClient(t *testing.T) {
	cert, _ := testCert(t)
	signing := make(chan struct{})
	var once sync.Once
	f := start(t, "127.0.0.1:0", func(c *Config) {
		c.HandshakeSlots = 1
		c.Server.Timeout = 10 * time.Second
		c.TLS.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			once.Do(func() { close(signing) })
			return &cert, nil
		}
	})
	f.pool.AddCert(cert.Leaf)
	raw, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	stalled := &stallAfterHello{Conn: raw}
	go tls.Client(stalled, &tls.Config{RootCAs: f.pool, ServerName: "ke.test", NextProtos: []string{"ntske/1"}}).Handshake()
	<-signing                                             // the stalled session holds the slot now...
	waitFor(t, func() bool { return len(f.l.gate) == 0 }) // ...until it writes its flight
	if _, err := f.exchange(t, "127.0.0.2", 4*time.Second); err != nil {
		t.Fatalf("a second client behind a stalled one: %v", err)
	}
}

// stallAfterHello writes the ClientHello and never reads the reply.
type stallAfterHello struct{ net.Conn }

func (s *stallAfterHello) Read([]byte) (int, error) {
	select {} // never: the server must not depend on this client
}

// A session that waits for a slot no longer than its own deadline fails
// its handshake, and takes no slot with it.
func TestHandshakeSlotWaitEndsAtDeadline(t *testing.T) {
	cert, _ := testCert(t)
	release := make(chan struct{})
	var first atomic.Bool
	f := start(t, "127.0.0.1:0", func(c *Config) {
		c.HandshakeSlots = 1
		c.Server.Timeout = 300 * time.Millisecond
		c.TLS.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if first.CompareAndSwap(false, true) {
				<-release // the first session holds the only slot
			}
			return &cert, nil
		}
	})
	f.pool.AddCert(cert.Leaf)
	done := make(chan error, 1)
	go func() { _, err := f.exchange(t, "127.0.0.1", 5*time.Second); done <- err }()
	waitFor(t, func() bool { return len(f.l.gate) == 1 })
	if _, err := f.exchange(t, "127.0.0.2", 2*time.Second); err == nil {
		t.Fatal("a session got through while the only slot was held past its deadline")
	}
	close(release)
	<-done
	waitFor(t, func() bool { return len(f.l.gate) == 0 && f.l.Stats().Active == 0 })
}
