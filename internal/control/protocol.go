// Package control is timegate's local control channel: a Unix stream socket
// (chrony's `bindcmdaddress`) carrying one JSON request line and one JSON
// response line per connection. It is the edge between `gatectl` and a
// running gateway; every answer comes from a Handler the gateway provides.
//
// Why a Unix socket and nothing on the network: the socket file's mode and
// owner (0660, the daemon's user and an admin group) keep other local users
// out before they connect, and SO_PEERCRED names the caller, so the daemon
// checks who asks without passwords or keys. A request is small and bounded,
// every connection has one deadline, and the number of open connections is
// capped, so a local user who may connect still cannot exhaust the daemon.
//
// Wire format (version 1), one line each way, then the server closes:
//
//	→ {"v":1,"cmd":"keys.nts.rotate","args":{...}}\n
//	← {"v":1,"ok":true,"data":{...}}\n
//	← {"v":1,"ok":false,"error":"...","code":"unknown-command"}\n
package control

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the protocol version this package speaks. A server answers a
// request of another version with CodeVersion, so an old gatectl talking to
// a new daemon (or the reverse) fails with a clear message.
const Version = 1

// MaxRequest bounds one request line: the largest legitimate request (a
// config path or a key ID) is a few hundred bytes.
const MaxRequest = 4096

// MaxResponse bounds what a client reads: `sources` with a few hundred
// upstreams is the largest answer.
const MaxResponse = 8 << 20

// Request is one command.
type Request struct {
	V    int             `json:"v"`
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is the answer to one Request.
type Response struct {
	V     int             `json:"v"`
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data,omitempty"`
	Error string          `json:"error,omitempty"`
	Code  string          `json:"code,omitempty"`
}

// Error codes, stable for scripts.
const (
	CodeBadRequest = "bad-request"     // not one JSON request line within MaxRequest
	CodeVersion    = "version"         // protocol version mismatch
	CodeUnknown    = "unknown-command" // no such command
	CodeRefused    = "refused"         // caller not allowed
	CodeFailed     = "failed"          // the command ran and failed
	CodeBusy       = "busy"            // too many control connections
	// CodeNoWrite: the daemon may not write a file the command edits (it
	// dropped privileges); a gatectl run as root edits the file itself.
	CodeNoWrite = "no-write"
)

// Error is a failed command as the client sees it.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// ErrRefused matches an Error with CodeRefused (errors.Is).
var ErrRefused = &Error{Code: CodeRefused}

// Is lets errors.Is compare by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Msg == "" || t.Msg == e.Msg)
}

// Failed wraps a handler error so that the client sees its message with
// CodeFailed.
func Failed(format string, a ...any) error {
	return &Error{Code: CodeFailed, Msg: fmt.Sprintf(format, a...)}
}

// errorResponse turns any error into a Response.
func errorResponse(err error) Response {
	var ce *Error
	if errors.As(err, &ce) {
		return Response{V: Version, Error: ce.Msg, Code: ce.Code}
	}
	return Response{V: Version, Error: err.Error(), Code: CodeFailed}
}
