package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"timegate/internal/config"
	"timegate/internal/control"
	"timegate/internal/report"
	"timegate/symkey"
)

// newTestGateway builds a gateway from conf (a file in a temp dir) without running it:
// NTP and NTS-KE off, its control socket in the temp dir.
func newTestGateway(t *testing.T, conf string) (*Gateway, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "timegate.conf")
	conf = strings.ReplaceAll(conf, "DIR", dir)
	// NTP on a free loopback port: a config serving nothing is refused.
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	conf = strings.Replace(conf, "port 0\nntsport 0\n", "port "+strconv.Itoa(port)+"\nntsport 0\nbindaddress 127.0.0.1\n", 1)
	if strings.Contains(conf, "keyfile") {
		os.WriteFile(filepath.Join(dir, "keys"), nil, 0o600)
	}
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{ConfigPath: path, StateDir: dir, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.closeAll)
	return g, dir
}

func handle(t *testing.T, g *Gateway, cmd string, args any, out any) error {
	t.Helper()
	raw, _ := json.Marshal(args)
	v, err := g.Handle(context.Background(), control.Cred{}, cmd, raw)
	if err != nil || out == nil {
		return err
	}
	b, _ := json.Marshal(v)
	return json.Unmarshal(b, out)
}

// TestSymKeysEditing: gen appends an AES-CMAC key the responder uses at once; remove
// deletes only that key's line, leaving the operator's comments and other keys.
func TestSymKeysEditing(t *testing.T) {
	g, dir := newTestGateway(t, "port 0\nntsport 0\nlocal stratum 9\nkeyfile DIR/keys\n")
	keys := filepath.Join(dir, "keys")
	orig := "# site keys\n5 SHA1 HEX:0102030405060708090A0B0C0D0E0F1011121314 # legacy peer\n"
	os.WriteFile(keys, []byte(orig), 0o600)
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	var res SymGenResult
	if err := handle(t, g, CmdSymGen, SymGenArgs{}, &res); err != nil {
		t.Fatal(err)
	}
	if res.ID != 6 || res.Type != "AES128" || !strings.HasPrefix(res.Line, "6 AES128 HEX:") || len(res.Line) != len("6 AES128 HEX:")+32 {
		t.Fatalf("gen: %+v", res)
	}
	if g.responder.Load().Keys == nil {
		t.Fatal("responder has no keys after gen")
	}
	if _, ok := g.responder.Load().Keys(6); !ok {
		t.Fatal("the new key is not in use after gen")
	}
	if err := handle(t, g, CmdSymGen, SymGenArgs{ID: 6}, nil); err == nil {
		t.Fatal("gen over an existing ID accepted")
	}
	if err := handle(t, g, CmdSymGen, SymGenArgs{Type: "MD5"}, nil); err == nil {
		t.Fatal("gen of a legacy digest accepted")
	}
	var list SymList
	if err := handle(t, g, CmdSymList, nil, &list); err != nil || len(list.Keys) != 2 || !list.Keys[0].Legacy || list.Keys[1].ID != 6 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := handle(t, g, CmdSymRemove, SymRemoveArgs{ID: 6}, nil); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(keys); string(data) != orig {
		t.Fatalf("after gen+remove the file is\n%s\nwant\n%s", data, orig)
	}
	if fi, _ := os.Stat(keys); fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file mode %v", fi.Mode())
	}
	if err := handle(t, g, CmdSymRemove, SymRemoveArgs{ID: 77}, nil); err == nil {
		t.Fatal("removing a missing key succeeded")
	}
	set, _, err := symkey.Parse(keys, []byte(orig))
	if err != nil || set.Len() != 1 {
		t.Fatal(err)
	}
}

func TestControlCommandErrors(t *testing.T) {
	g, dir := newTestGateway(t, "port 0\nntsport 0\nlocal stratum 9\n")
	var ce *control.Error
	if err := handle(t, g, "bogus", nil, nil); !errors.As(err, &ce) || ce.Code != control.CodeUnknown {
		t.Errorf("unknown command: %v", err)
	}
	for _, cmd := range []string{CmdKeysRotate, CmdKeysPrune, CmdCertShow, CmdCertReload, CmdSymList} {
		if err := handle(t, g, cmd, nil, nil); !errors.As(err, &ce) || ce.Code != control.CodeFailed {
			t.Errorf("%s with NTS-KE off and no keyfile: %v", cmd, err)
		}
	}
	// An NTP host without NTS-KE follows a shared ring file; none is there yet.
	var kr report.KeyRing
	if err := handle(t, g, CmdKeysList, nil, &kr); err != nil || !kr.Follow || len(kr.Keys) != 0 {
		t.Errorf("keys list on an NTP-only host without a ring file: %v %+v", err, kr)
	}
	for _, n := range []int{0, MaxClients + 1} {
		if err := handle(t, g, CmdClients, ClientsArgs{N: n}, nil); err == nil {
			t.Errorf("clients -n %d accepted", n)
		}
	}
	// config check reads the running file: a broken edit is reported, not applied.
	os.WriteFile(filepath.Join(dir, "timegate.conf"), []byte("port 1123\nbogus 1\n"), 0o600)
	var cr CheckResult
	if err := handle(t, g, CmdConfigCheck, nil, &cr); err != nil || len(cr.Problems) != 1 || !strings.Contains(cr.Problems[0], "timegate.conf:2: bogus") {
		t.Fatalf("config check: %+v %v", cr, err)
	}
	if err := handle(t, g, CmdReload, nil, nil); err == nil {
		t.Fatal("a broken config reloaded")
	}
}

// TestReloadNamesRestartOnly: what a reload cannot apply is named with its line, and
// only that.
func TestReloadNamesRestartOnly(t *testing.T) {
	g, dir := newTestGateway(t, "port 0\nntsport 0\nlocal stratum 9\nminsources 2\n")
	conf, _ := os.ReadFile(filepath.Join(dir, "timegate.conf"))
	conf = []byte(strings.Replace(string(conf), "local stratum 9\nminsources 2\n", "local stratum 8\nminsources 1\nholdover 60\n", 1))
	os.WriteFile(filepath.Join(dir, "timegate.conf"), conf, 0o600)
	var res ReloadResult
	if err := handle(t, g, CmdReload, nil, &res); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"timegate.conf:6: holdover changed",
		"timegate.conf:4: local changed",
	}
	got := strings.Join(res.Warnings, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("warnings lack %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "minsources") {
		t.Errorf("minsources applies on reload, yet a warning names it:\n%s", got)
	}
	if st := g.Status(); len(st.Warnings) != len(res.Warnings) {
		t.Errorf("status shows %v, reload said %v", st.Warnings, res.Warnings)
	}
}
