// Package relp is the frame codec of RELP, the Reliable Event Logging
// Protocol of rsyslog's librelp (imrelp/omrelp), as its protocol
// description defines it:
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] TRAILER
//	TXNR    = 1..999999999 (0 only in the server's "serverclose")
//	COMMAND = 1..32 letters: open, syslog, close, rsp, serverclose
//	DATALEN = decimal length of DATA (0 means no SP and no DATA)
//	TRAILER = LF
//
// A client opens a session ("open" with relp_version=0, relp_software and
// commands=syslog), sends each message as a "syslog" command and considers
// it delivered when the server answers "rsp" with the same TXNR and status
// 200. It is pure: encode into a buffer, parse from a buffer.
package relp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Limits. A response carries a status and a short text, an "open"
// response the offers; 64 KiB is far beyond either, and caps what a
// hostile collector can make the client buffer.
const (
	MaxTxnr     = 999_999_999
	MaxCommand  = 32
	MaxDataLen  = 64 << 10
	digitsLimit = 9
)

// Errors.
var (
	// ErrShort means buf holds only the beginning of a frame: read more.
	ErrShort = errors.New("relp: incomplete frame")
	// ErrFrame means buf cannot be the beginning of a valid frame.
	ErrFrame = errors.New("relp: malformed frame")
)

// Frame is one RELP frame.
type Frame struct {
	Txnr    uint32
	Command string
	Data    []byte // aliases the parsed buffer
}

// Append encodes f.
func Append(dst []byte, f Frame) []byte {
	dst = strconv.AppendUint(dst, uint64(f.Txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, f.Command...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(f.Data)), 10)
	if len(f.Data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, f.Data...)
	}
	return append(dst, '\n')
}

// Parse reads one frame from the start of buf and returns it with the
// number of bytes it used. ErrShort asks for more input; ErrFrame is final.
func Parse(buf []byte) (Frame, int, error) {
	var f Frame
	txnr, i, err := number(buf, 0, ' ')
	if err != nil {
		return f, 0, err
	}
	f.Txnr = uint32(txnr)
	j := i
	for j < len(buf) && j-i <= MaxCommand && isAlpha(buf[j]) {
		j++
	}
	switch {
	case j == len(buf) && j-i <= MaxCommand:
		return f, 0, ErrShort
	case j == i || j-i > MaxCommand || buf[j] != ' ':
		return f, 0, fmt.Errorf("%w: command", ErrFrame)
	}
	f.Command = string(buf[i:j])
	n, k, err := dataLen(buf, j+1)
	if err != nil {
		return f, 0, err
	}
	if n == 0 {
		return f, k + 1, nil // k is at the trailer
	}
	end := k + 1 + n // k is at the SP before DATA
	if end >= len(buf) {
		return f, 0, ErrShort
	}
	if buf[end] != '\n' {
		return f, 0, fmt.Errorf("%w: no trailer after %d bytes of data", ErrFrame, n)
	}
	f.Data = buf[k+1 : end]
	return f, end + 1, nil
}

// dataLen reads DATALEN at i and checks what follows: LF when 0, SP else.
// It returns the length and the index of that following byte.
func dataLen(buf []byte, i int) (int, int, error) {
	j := i
	for j < len(buf) && j-i <= digitsLimit && isDigit(buf[j]) {
		j++
	}
	if j == len(buf) && j-i <= digitsLimit {
		return 0, 0, ErrShort
	}
	if j == i || j-i > digitsLimit || (j-i > 1 && buf[i] == '0') {
		return 0, 0, fmt.Errorf("%w: data length", ErrFrame)
	}
	n, _ := strconv.Atoi(string(buf[i:j]))
	if n > MaxDataLen {
		return 0, 0, fmt.Errorf("%w: data length %d over %d", ErrFrame, n, MaxDataLen)
	}
	want := byte(' ')
	if n == 0 {
		want = '\n'
	}
	if buf[j] != want {
		return 0, 0, fmt.Errorf("%w: after data length", ErrFrame)
	}
	return n, j, nil
}

// number reads 1..9 digits at i followed by sep; it returns the value and
// the index after sep.
func number(buf []byte, i int, sep byte) (int, int, error) {
	j := i
	for j < len(buf) && j-i <= digitsLimit && isDigit(buf[j]) {
		j++
	}
	if j == len(buf) && j-i <= digitsLimit {
		return 0, 0, ErrShort
	}
	if j == i || j-i > digitsLimit || buf[j] != sep || (j-i > 1 && buf[i] == '0') {
		return 0, 0, fmt.Errorf("%w: number", ErrFrame)
	}
	n, _ := strconv.Atoi(string(buf[i:j]))
	return n, j + 1, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// Response is the DATA of an "rsp" frame: a three-digit status, then
// optional human text and, for "open", the server's offers after a LF.
type Response struct {
	Code int
	Text string
}

// ParseResponse reads an rsp frame's data. An empty rsp (the answer to
// "close") has code 0.
func ParseResponse(data []byte) (Response, error) {
	if len(data) == 0 {
		return Response{}, nil
	}
	if len(data) < 3 || !isDigit(data[0]) || !isDigit(data[1]) || !isDigit(data[2]) ||
		(len(data) > 3 && data[3] != ' ' && data[3] != '\n') {
		return Response{}, fmt.Errorf("%w: response status", ErrFrame)
	}
	code, _ := strconv.Atoi(string(data[:3]))
	text := data[3:]
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	return Response{Code: code, Text: string(bytes.TrimSpace(text))}, nil
}

// OpenOffer is the DATA of the client's "open" command.
const OpenOffer = "relp_version=0\nrelp_software=timegate\ncommands=syslog"
