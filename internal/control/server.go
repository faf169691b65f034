package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Limits. Each names what it defends against.
const (
	// DefaultMaxConns caps concurrent control connections: a local user who
	// may connect (or a runaway script) opening connections in a loop gets
	// "busy" instead of goroutines and file descriptors without bound.
	DefaultMaxConns = 16
	// DefaultTimeout is the one deadline of a connection, request to
	// response: a client that connects and says nothing is cut off.
	DefaultTimeout = 10 * time.Second
	// busyTimeout bounds writing the "busy" answer to a connection over the
	// cap, so refusing cannot itself block.
	busyTimeout = 100 * time.Millisecond
)

// Cred is who is at the other end of a connection (SO_PEERCRED).
type Cred struct {
	PID, UID, GID int
	// Known is false where the platform cannot tell (non-Linux).
	Known bool
}

// Handler runs one authorised command and returns what to encode as the
// response's data. Unknown commands return an *Error with CodeUnknown.
type Handler interface {
	Handle(ctx context.Context, who Cred, cmd string, args json.RawMessage) (any, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, who Cred, cmd string, args json.RawMessage) (any, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, who Cred, cmd string, args json.RawMessage) (any, error) {
	return f(ctx, who, cmd, args)
}

// Server answers control connections. Handler and Authorize are required.
type Server struct {
	Handler Handler
	// Authorize says whether the caller may use the socket at all; a refusal
	// is answered with CodeRefused and reported to OnRefused.
	Authorize func(Cred) error
	MaxConns  int           // 0: DefaultMaxConns
	Timeout   time.Duration // 0: DefaultTimeout
	Log       *zap.Logger   // nil: no logging
	// OnCommand, when set, hears every command after it ran (for the audit
	// trail); OnRefused every refused caller. Both must not block.
	OnCommand func(who Cred, cmd string, err error)
	OnRefused func(who Cred, err error)
}

// Serve accepts connections until ctx ends or the listener fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	slots := make(chan struct{}, maxConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// EMFILE and friends: back off instead of spinning.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("control: accept: %w", err)
		}
		select {
		case slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-slots }()
				s.serveConn(ctx, c)
			})
		default:
			c.SetDeadline(time.Now().Add(busyTimeout))
			writeResponse(c, Response{V: Version, Error: "control socket busy: too many connections", Code: CodeBusy})
			c.Close()
		}
	}
}

// serveConn answers one request under one deadline, then closes.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	c.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	who, err := s.caller(c)
	if err == nil {
		err = s.Authorize(who)
	}
	if err != nil {
		s.log().Warn("control connection refused", zap.Int("uid", who.UID), zap.Int("gid", who.GID), zap.Int("pid", who.PID), zap.Error(err))
		if s.OnRefused != nil {
			s.OnRefused(who, err)
		}
		writeResponse(c, Response{V: Version, Error: "not allowed: " + err.Error(), Code: CodeRefused})
		return
	}
	req, err := readRequest(c)
	if err != nil {
		writeResponse(c, errorResponse(err))
		return
	}
	writeResponse(c, s.dispatch(ctx, who, req))
}

func (s *Server) caller(c net.Conn) (Cred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Cred{}, errors.New("not a Unix socket connection")
	}
	return peerCred(uc)
}

func (s *Server) dispatch(ctx context.Context, who Cred, req Request) Response {
	data, err := s.Handler.Handle(ctx, who, req.Cmd, req.Args)
	if s.OnCommand != nil {
		s.OnCommand(who, req.Cmd, err)
	}
	if err != nil {
		return errorResponse(err)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return errorResponse(fmt.Errorf("control: encoding the answer: %w", err))
	}
	return Response{V: Version, OK: true, Data: raw}
}

// readRequest reads one line of at most MaxRequest bytes and decodes it.
func readRequest(c net.Conn) (Request, error) {
	br := bufio.NewReaderSize(c, 512)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxRequest {
			return Request{}, &Error{Code: CodeBadRequest, Msg: fmt.Sprintf("request longer than %d bytes", MaxRequest)}
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return Request{}, &Error{Code: CodeBadRequest, Msg: "no complete request line: " + err.Error()}
		}
	}
	return DecodeRequest(line)
}

// DecodeRequest parses one request line strictly: unknown fields and
// trailing data are errors, so a typo in a hand-written request is not
// silently a different command.
func DecodeRequest(line []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, &Error{Code: CodeBadRequest, Msg: "bad request: " + err.Error()}
	}
	if dec.More() {
		return Request{}, &Error{Code: CodeBadRequest, Msg: "bad request: data after the request object"}
	}
	if req.V != Version {
		return Request{}, &Error{Code: CodeVersion, Msg: fmt.Sprintf("protocol version %d not supported (this daemon speaks %d): use the gatectl of the same release", req.V, Version)}
	}
	if req.Cmd == "" {
		return Request{}, &Error{Code: CodeBadRequest, Msg: "bad request: no command"}
	}
	return req, nil
}

func writeResponse(c net.Conn, r Response) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	c.Write(append(b, '\n'))
}

func (s *Server) log() *zap.Logger {
	if s.Log != nil {
		return s.Log
	}
	return zap.NewNop()
}
