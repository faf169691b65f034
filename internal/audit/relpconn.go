package audit

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"time"

	"timegate/audit/relp"
)

// relpConn is a RELP client session (rsyslog imrelp): every syslog
// command is answered by "rsp" with the same transaction number, and
// status 200 means the collector has taken the message.
type relpConn struct {
	c    net.Conn
	bw   *bufio.Writer
	txnr uint32
	ack  chan uint64
	fail chan error
	done chan struct{}
	buf  []byte
}

// relpWindow bounds messages sent and not yet acknowledged: the memory a
// session holds and the duplicates a reconnect can cause.
const relpWindow = 512

// openRELP sends "open" and waits for "200 OK".
func openRELP(c net.Conn) (*relpConn, error) {
	r := &relpConn{c: c, bw: bufio.NewWriterSize(c, 64<<10), txnr: 1,
		ack: make(chan uint64, relpWindow+8), fail: make(chan error, 1), done: make(chan struct{})}
	br := bufio.NewReaderSize(c, 16<<10)
	c.SetDeadline(time.Now().Add(ioTimeout))
	r.bw.Write(relp.Append(nil, relp.Frame{Txnr: 1, Command: "open", Data: []byte(relp.OpenOffer)}))
	if err := r.bw.Flush(); err != nil {
		return nil, fmt.Errorf("RELP open: %w", err)
	}
	var buf []byte
	f, err := readFrame(br, &buf)
	if err != nil {
		return nil, fmt.Errorf("RELP open: %w", err)
	}
	resp, err := relp.ParseResponse(f.Data)
	if err != nil || f.Txnr != 1 || f.Command != "rsp" || resp.Code != 200 {
		return nil, fmt.Errorf("RELP open refused: %d %s (%q, %v)", resp.Code, resp.Text, f.Command, err)
	}
	c.SetDeadline(time.Time{})
	r.buf = buf
	go r.read(br)
	return r, nil
}

// readFrame reads one frame; buf carries bytes read past it to the next
// call. It never holds more than one maximal frame.
func readFrame(br *bufio.Reader, buf *[]byte) (relp.Frame, error) {
	var tmp [4096]byte
	for {
		f, n, err := relp.Parse(*buf)
		if err == nil {
			f.Data = append([]byte(nil), f.Data...)
			*buf = append((*buf)[:0], (*buf)[n:]...)
			return f, nil
		}
		if !errors.Is(err, relp.ErrShort) {
			return f, err
		}
		m, err := br.Read(tmp[:])
		*buf = append(*buf, tmp[:m]...)
		if err != nil && m == 0 {
			return f, err
		}
	}
}

func (r *relpConn) read(br *bufio.Reader) {
	buf := r.buf
	for {
		f, err := readFrame(br, &buf)
		if err != nil {
			r.failWith(fmt.Errorf("RELP: %w", err))
			return
		}
		if f.Command == "serverclose" {
			r.failWith(errors.New("RELP: the collector closed the session"))
			return
		}
		resp, err := relp.ParseResponse(f.Data)
		if f.Command != "rsp" || err != nil || resp.Code != 200 {
			r.failWith(fmt.Errorf("RELP: collector answered txnr %d with %q %d %s", f.Txnr, f.Command, resp.Code, resp.Text))
			return
		}
		select {
		case r.ack <- uint64(f.Txnr):
		case <-r.done:
			return
		}
	}
}

func (r *relpConn) failWith(err error) {
	select {
	case r.fail <- err:
	default:
	}
}

func (r *relpConn) send(msg []byte) (uint64, error) {
	r.txnr++
	if r.txnr > relp.MaxTxnr {
		r.txnr = 1 // librelp wraps the same way
	}
	_, err := r.bw.Write(relp.Append(nil, relp.Frame{Txnr: r.txnr, Command: "syslog", Data: msg}))
	return uint64(r.txnr), err
}

func (r *relpConn) flush() error {
	if r.bw.Buffered() == 0 {
		return nil
	}
	r.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	return r.bw.Flush()
}

func (r *relpConn) acked() <-chan uint64    { return r.ack }
func (r *relpConn) failed() <-chan error    { return r.fail }
func (r *relpConn) poll(time.Time) []uint64 { return nil }
func (r *relpConn) window() int             { return relpWindow }

// close ends the session politely ("close", then wait a moment for the
// answer), so the collector does not log an aborted session.
func (r *relpConn) close() {
	r.txnr++
	r.bw.Write(relp.Append(nil, relp.Frame{Txnr: r.txnr, Command: "close"}))
	if r.flush() == nil {
		select {
		case <-r.fail:
		case <-time.After(time.Second):
		}
	}
	close(r.done)
	r.c.Close()
}
