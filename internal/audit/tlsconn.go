package audit

import (
	"bufio"
	"fmt"
	"net"
	"time"

	"timegate/audit"
)

// tlsConn is syslog over TLS (RFC 5425) with octet-counted framing, as
// rsyslog's imtcp with the gtls driver reads it.
//
// RFC 5425 has no application acknowledgement, so "delivered" can only be
// inferred. A message counts as delivered once it was written and the
// connection then stayed up for tlsCommitDelay (a collector that crashed
// or was cut off resets or closes the connection, which the reader sees).
// Until then it is re-sent after any reconnect, from the file. This gives
// at-least-once delivery against collector restarts and network cuts, but
// not against a collector that accepts the bytes and loses them without
// closing the connection (its own queue lost in a crash that the kernel
// does not report within the delay). RELP, which acknowledges each
// message, has no such gap and is the recommended transport.
type tlsConn struct {
	c    net.Conn
	bw   *bufio.Writer
	id   uint64
	sent []sentAt
	fail chan error
	buf  []byte
}

type sentAt struct {
	id uint64
	at time.Time
}

// tlsCommitDelay and tlsWindow: the window must cover what can be sent in
// the delay, since nothing is confirmed sooner.
const (
	tlsCommitDelay = 2 * time.Second
	tlsWindow      = 16384
)

func openTLS(c net.Conn) *tlsConn {
	t := &tlsConn{c: c, bw: bufio.NewWriterSize(c, 64<<10), fail: make(chan error, 1)}
	go t.read()
	return t
}

// read only watches for the end of the connection: rsyslog sends nothing.
func (t *tlsConn) read() {
	var b [512]byte
	for {
		if _, err := t.c.Read(b[:]); err != nil {
			select {
			case t.fail <- fmt.Errorf("syslog-TLS connection ended: %w", err):
			default:
			}
			return
		}
	}
}

func (t *tlsConn) send(msg []byte) (uint64, error) {
	t.id++
	t.buf = audit.OctetCounted(t.buf[:0], msg)
	_, err := t.bw.Write(t.buf)
	t.sent = append(t.sent, sentAt{t.id, time.Now()})
	return t.id, err
}

func (t *tlsConn) flush() error {
	if t.bw.Buffered() == 0 {
		return nil
	}
	t.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	return t.bw.Flush()
}

func (t *tlsConn) poll(now time.Time) []uint64 {
	var ids []uint64
	for len(t.sent) > 0 && now.Sub(t.sent[0].at) >= tlsCommitDelay {
		ids = append(ids, t.sent[0].id)
		t.sent = t.sent[1:]
	}
	return ids
}

func (t *tlsConn) acked() <-chan uint64 { return nil }
func (t *tlsConn) failed() <-chan error { return t.fail }
func (t *tlsConn) window() int          { return tlsWindow }
func (t *tlsConn) close()               { t.c.Close() }
