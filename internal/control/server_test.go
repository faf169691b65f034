package control

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// serve starts a Server on a socket in a temp dir and returns its path.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := Listen(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Log == nil {
		s.Log = zaptest.NewLogger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

func echo() Handler {
	return HandlerFunc(func(_ context.Context, who Cred, cmd string, args json.RawMessage) (any, error) {
		switch cmd {
		case "echo":
			return map[string]any{"args": args, "uid": who.UID, "known": who.Known}, nil
		case "fail":
			return nil, Failed("it broke: %d", 7)
		case "plain-error":
			return nil, errors.New("plain")
		}
		return nil, &Error{Code: CodeUnknown, Msg: "unknown command " + cmd}
	})
}

func allowAll(Cred) error { return nil }

func TestCallRoundTrip(t *testing.T) {
	path := serve(t, &Server{Handler: echo(), Authorize: allowAll})
	var out struct {
		Args  map[string]int
		UID   int
		Known bool
	}
	if err := Call(t.Context(), path, "echo", map[string]int{"n": 3}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Args["n"] != 3 || out.UID != os.Geteuid() || !out.Known {
		t.Fatalf("got %+v, want args echoed and our own uid from SO_PEERCRED", out)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != SocketMode {
		t.Fatalf("socket mode %v (%v), want %o", fi.Mode(), err, SocketMode)
	}
}

func TestCallErrors(t *testing.T) {
	path := serve(t, &Server{Handler: echo(), Authorize: allowAll})
	for _, tc := range []struct {
		cmd, code, msg string
	}{
		{"fail", CodeFailed, "it broke: 7"},
		{"plain-error", CodeFailed, "plain"},
		{"nope", CodeUnknown, "unknown command nope"},
	} {
		err := Call(t.Context(), path, tc.cmd, nil, nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Msg != tc.msg {
			t.Errorf("%s: %v, want %s %q", tc.cmd, err, tc.code, tc.msg)
		}
	}
}

// TestRefused: a caller Authorize refuses gets CodeRefused and nothing runs.
func TestRefused(t *testing.T) {
	ran := false
	var refused []Cred
	h := HandlerFunc(func(context.Context, Cred, string, json.RawMessage) (any, error) { ran = true; return nil, nil })
	path := serve(t, &Server{Handler: h, Authorize: func(Cred) error { return ErrNotAllowed },
		OnRefused: func(c Cred, _ error) { refused = append(refused, c) }})
	err := Call(t.Context(), path, "status", nil, nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), ErrNotAllowed.Error()) {
		t.Fatalf("err = %v, want refused", err)
	}
	if ran || len(refused) != 1 || refused[0].UID != os.Geteuid() {
		t.Fatalf("ran %v, refused %+v", ran, refused)
	}
}

// rawExchange writes req as is and returns the one response line.
func rawExchange(t *testing.T, path string, req []byte) Response {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(req)
	resp, err := readResponse(c)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestBadRequests(t *testing.T) {
	path := serve(t, &Server{Handler: echo(), Authorize: allowAll})
	for _, tc := range []struct {
		name string
		req  string
		code string
	}{
		{"not json", "hello\n", CodeBadRequest},
		{"old version", `{"v":0,"cmd":"echo"}` + "\n", CodeVersion},
		{"future version", `{"v":2,"cmd":"echo"}` + "\n", CodeVersion},
		{"no command", `{"v":1}` + "\n", CodeBadRequest},
		{"unknown field", `{"v":1,"cmd":"echo","as":"root"}` + "\n", CodeBadRequest},
		{"trailing data", `{"v":1,"cmd":"echo"} {"v":1}` + "\n", CodeBadRequest},
		{"too long", `{"v":1,"cmd":"echo","args":"` + strings.Repeat("A", MaxRequest) + "\"}\n", CodeBadRequest},
	} {
		resp := rawExchange(t, path, []byte(tc.req))
		if resp.OK || resp.Code != tc.code {
			t.Errorf("%s: %+v, want code %s", tc.name, resp, tc.code)
		}
	}
}

// TestDeadline: a client that connects and says nothing is disconnected at the deadline
// instead of holding a connection slot for ever.
func TestDeadline(t *testing.T) {
	path := serve(t, &Server{Handler: echo(), Authorize: allowAll, Timeout: 200 * time.Millisecond})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := readResponse(c); err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("silent client: %v, want the connection closed by the server", err)
	}
}

// TestConnectionCap: with MaxConns silent clients holding every slot, the next one is
// told "busy" at once; when they go, service resumes.
func TestConnectionCap(t *testing.T) {
	path := serve(t, &Server{Handler: echo(), Authorize: allowAll, MaxConns: 3, Timeout: 5 * time.Second})
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The three take the slots once the server has accepted them, which a
	// busy machine may delay: until then a probe may still be served.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := Call(t.Context(), path, "echo", nil, nil)
		var ce *Error
		if errors.As(err, &ce) && ce.Code == CodeBusy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("over the cap: %v, want busy", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range held {
		c.Close()
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		err := Call(t.Context(), path, "echo", nil, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the holders left: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestListenStaleAndLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "ctl.sock")
	ln, err := Listen(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, -1); err == nil || !strings.Contains(err.Error(), "another timegate") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	// A crashed daemon leaves its socket file behind: simulate with a
	// listener that does not unlink.
	ln.SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := Listen(path, -1)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != dirMode {
		t.Fatalf("created dir mode %v %v", fi.Mode(), err)
	}
	plain := filepath.Join(dir, "file")
	os.WriteFile(plain, nil, 0o600)
	if _, err := Listen(plain, -1); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	groups := func(pid int) ([]int, error) {
		if pid == 42 {
			return []int{5, 1000}, nil
		}
		return nil, errors.New("gone")
	}
	p := Policy{UID: 100, GID: 1000, Groups: groups}
	for _, tc := range []struct {
		c  Cred
		ok bool
	}{
		{Cred{UID: 0, GID: 0, Known: true}, true},                   // root
		{Cred{UID: 100, GID: 7, Known: true}, true},                 // the daemon's user
		{Cred{UID: 555, GID: 1000, Known: true}, true},              // primary group
		{Cred{PID: 42, UID: 555, GID: 7, Known: true}, true},        // supplementary group
		{Cred{PID: 43, UID: 555, GID: 7, Known: true}, false},       // groups unreadable
		{Cred{PID: 44, UID: 65534, GID: 65534, Known: true}, false}, // nobody
	} {
		err := p.Authorize(tc.c)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok=%v", tc.c, err, tc.ok)
		}
	}
	if err := (Policy{UID: 100, GID: -1}).Authorize(Cred{UID: 5, GID: 5, Known: true}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("no admin group: %v", err)
	}
}

// TestProcGroups reads this process's own supplementary groups.
func TestProcGroups(t *testing.T) {
	gs, err := procGroups(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.Getgroups()
	if len(gs) != len(want) {
		t.Fatalf("procGroups %v, os.Getgroups %v", gs, want)
	}
}
