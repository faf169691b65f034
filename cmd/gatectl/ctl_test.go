package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/internal/control"
	"timegate/internal/gateway"
	"timegate/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// fixture is what the fake daemon answers: fixed data, so the tables are golden.
func fixture(synced bool) map[string]any {
	st := report.Status{State: report.StateSynchronised, Synchronised: true, Stratum: 3, RefID: "192.0.2.10",
		SystemPeer: "ntp1.example.net (192.0.2.10:123)", RefTime: t0.Add(-30 * time.Second), Leap: "normal",
		Offset: 0.000012345, FrequencyPPM: -12.5, RootDelay: 0.0123, RootDispersion: 0.0021, RootDistance: 0.00825,
		SinceEstimate: 30, EstimateOffset: 0.000123456, Truechimers: 3, Sources: 4, MinSources: 2, Version: "v1.2.3 abcdef012345 go1.27.3",
		Started: t0.Add(-2 * time.Hour), Uptime: 7200, ConfigFile: "/etc/timegate/timegate.conf", ConfigLoaded: t0.Add(-time.Hour),
		Audit: &report.AuditStatus{File: "/var/lib/timegate/audit.log", LastSeq: 1234, Segments: 3, DiskBytes: 13107200,
			Shipping: &report.AuditShipping{Target: "relp://collector.example.net:2514", Connected: true, AckedSeq: 1230,
				BacklogBytes: 1229, SpoolMax: 64 << 20, Reconnects: 1, LastError: "EOF", Since: t0.Add(-25 * time.Minute)}}}
	if !synced {
		st = report.Status{State: report.StateUnsynchronised, Reason: "only 1 of minsources 2 agree", ReasonCode: "MINS",
			Stratum: 16, RefID: "MINS", Leap: "not synchronised", SinceEstimate: -1, Sources: 2, MinSources: 2,
			Version: "v1.2.3", Started: t0, ConfigFile: "(embedded defaults)", ConfigLoaded: t0,
			Warnings: []string{"timegate.conf:4: ntsrotate changed: takes effect only after a restart"},
			Audit: &report.AuditStatus{File: "/var/lib/timegate/audit.log", LastSeq: 70210, Segments: 1, DiskBytes: 900,
				DroppedTotal: 17, WriteFailing: true, LastWriteError: "writing /var/lib/timegate/audit.log: no space left on device",
				RotateError: "naming the segment: link /var/lib/timegate/audit.log /var/lib/timegate/audit.log-000000000001: no space left on device",
				Shipping: &report.AuditShipping{Target: "relp://collector.example.net:2514", AckedSeq: 1230,
					BacklogBytes: 70 << 20, SpoolMax: 64 << 20, Alarm: true, Skipped: 1, Reconnects: 40,
					LastError: "dial tcp 192.0.2.50:2514: connect: connection refused", Since: t0.Add(-40 * time.Minute)}}}
	}
	return map[string]any{
		gateway.CmdStatus: st,
		gateway.CmdSources: []report.Source{
			{ID: 1, Name: "ntp1.example.net", Address: "192.0.2.10:123", State: report.SourceSelected, Why: "system peer", Auth: "nts", Cookies: 7, SinceKE: 3600, Stratum: 2, Poll: 6, Reach: 0o377, SinceRx: 12, Samples: 8, Offset: 0.0000123, Delay: 0.00234, Jitter: 0.000045, Authenticated: true, XLeave: true, Interleaved: true, Mode: "interleaved"},
			{ID: 2, Name: "192.0.2.20", Address: "192.0.2.20:123", State: report.SourceCombined, Auth: "key", KeyID: 5, KeyType: "AES128", Stratum: 2, Poll: 7, Reach: 0o376, SinceRx: 100, Samples: 7, Offset: -0.00041, Delay: 0.0051, Jitter: 0.0002, Authenticated: true, XLeave: true, Mode: "basic"},
			{ID: 3, Name: "liar.example.net", Address: "198.51.100.9:123", State: report.SourceFalseticker, Why: "outside the intersection of the majority", Auth: "nts", Cookies: 8, Stratum: 1, Poll: 6, Reach: 0o377, SinceRx: 40, Samples: 8, Offset: 2.999, Delay: 0.012, Jitter: 0.001, Authenticated: true},
			{ID: 4, Name: "broken.example.net", State: report.SourceKEFailing, Why: "nts: TLS handshake: x509: certificate signed by unknown authority", Auth: "nts", SinceRx: -1, SinceKE: -1},
			{ID: 5, Name: "pool.example.net", KEAddress: "203.0.113.7:4460", State: report.SourceKEFailing, Why: "nts: dial tcp 203.0.113.7:4460: connect: connection refused", Auth: "nts", SinceRx: -1, SinceKE: -1},
		},
		gateway.CmdServerStats: report.ServerStats{
			NTP: report.NTPStats{Received: 1000, Replied: 900, ByMode: map[string]uint64{"client": 990, "control": 10}, Answered: map[string]uint64{"none": 800, "key": 50, "nts": 50},
				Dropped: map[string]uint64{"rate-limited": 90, "bad-mac": 10, "framing": 0}, KoD: map[string]uint64{"RATE": 5, "DENY": 0, "RSTR": 0}, NTSNAK: 3, Leaked: 30, KernelDrops: 70,
				Interleaved: 40, TxStamps: 45, Timestamps: 12, TimestampCapacity: 8192, TxLeadNS: 1840, LeadProbes: 96, TxLeadLagNS: 2210, TxLeadCostNS: 370},
			KE:   report.KEStats{Accepted: 20, Served: 17, Refused: map[string]uint64{"rate-limit": 2}, Failed: map[string]uint64{"alpn": 1, "timeout": 0}},
			Rate: report.RateStats{NTP: report.RateTable{Enabled: true, Entries: 12, Capacity: 4096, Evictions: 1}},
		},
		gateway.CmdClients: report.Clients{Tracked: 12, Rows: []report.Client{
			{Prefix: "192.0.2.0/24", Requests: 500, Limited: 90, SinceRx: 1},
			{Prefix: "2001:db8::/64", Requests: 20, SinceRx: 3000},
		}},
		gateway.CmdKeysList: report.KeyRing{RotateEvery: 86400, NextRotate: t0.Add(6 * time.Hour), File: "/var/lib/timegate/ntskeys.bin", Keys: []report.Key{
			{ID: "169552957", Role: report.KeyNext, Created: t0.Add(-18 * time.Hour), Age: 18 * 3600},
			{ID: "2575857510", Role: report.KeySealing, Created: t0.Add(-18 * time.Hour), Age: 18 * 3600},
			{ID: "305419896", Role: report.KeyOpening, Created: t0.Add(-42 * time.Hour), Age: 42 * 3600},
		}},
		gateway.CmdSymList: gateway.SymList{File: "/etc/timegate/keys", Keys: []gateway.SymKey{{ID: 1, Type: "AES128"}, {ID: 7, Type: "SHA1", Legacy: true}}},
		gateway.CmdSymGen:  gateway.SymGenResult{ID: 8, Type: "AES128", Line: "8 AES128 HEX:000102030405060708090A0B0C0D0E0F", File: "/etc/timegate/keys"},
		gateway.CmdCertShow: report.Cert{CertFile: "/etc/timegate/cert.pem", KeyFile: "/etc/timegate/key.pem", Subject: "CN=time.example.net", Issuer: "CN=Example CA",
			DNSNames: []string{"time.example.net"}, IPAddresses: []string{"192.0.2.1"}, NotBefore: t0.Add(-24 * time.Hour), NotAfter: t0.Add(5 * 24 * time.Hour),
			ExpiresIn: 5 * 86400, KeyType: "ECDSA P-256", SHA256: "ab12", ChainLength: 2, Loaded: t0},
		gateway.CmdAuditRotate: gateway.AuditRotateResult{Segment: "/var/lib/timegate/audit.log-000000070211", First: 70211, Last: 140385,
			Pruned: []string{"/var/lib/timegate/audit.log-000000000001"}},
		gateway.CmdReload:      gateway.ReloadResult{Warnings: []string{"timegate.conf:3: port changed: takes effect only after a restart"}},
		gateway.CmdConfigCheck: gateway.CheckResult{File: "/etc/timegate/timegate.conf", Problems: []string{"timegate.conf:2: bogus: unknown directive"}},
	}
}

// fakeDaemon serves fixture over a real control socket and records the
// requests it got.
func fakeDaemon(t *testing.T, synced bool) (string, *[]string) {
	t.Helper()
	data := fixture(synced)
	var got []string
	h := control.HandlerFunc(func(_ context.Context, _ control.Cred, cmd string, args json.RawMessage) (any, error) {
		got = append(got, cmd+" "+string(args))
		if d, ok := data[cmd]; ok {
			return d, nil
		}
		switch cmd {
		case gateway.CmdKeysRotate:
			return data[gateway.CmdKeysList], nil
		case gateway.CmdKeysPrune:
			return gateway.PruneResult{Dropped: 2}, nil
		case gateway.CmdSymRemove, gateway.CmdCertReload:
			return data[gateway.CmdCertShow], nil
		}
		return nil, &control.Error{Code: control.CodeUnknown, Msg: "unknown command " + cmd}
	})
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := control.Listen(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	srv := &control.Server{Handler: h, Authorize: func(control.Cred) error { return nil }, Log: zaptest.NewLogger(t)}
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path, &got
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// TestCtlGolden: every control command's human table, from the same data a daemon
// sends, against golden files; and its exit code.
func TestCtlGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		synced bool
		args   []string
		code   int
	}{
		{"status", true, []string{"status"}, exitOK},
		{"status-unsync", false, []string{"status"}, exitUnsound},
		{"sources", true, []string{"sources"}, exitOK},
		{"serverstats", true, []string{"serverstats"}, exitOK},
		{"clients", true, []string{"clients", "-n", "5"}, exitOK},
		{"keys-nts-list", true, []string{"keys", "nts", "list"}, exitOK},
		{"keys-nts-rotate", true, []string{"keys", "nts", "rotate"}, exitOK},
		{"keys-nts-prune", true, []string{"keys", "nts", "prune", "-keep", "2"}, exitOK},
		{"keys-sym-list", true, []string{"keys", "sym", "list"}, exitOK},
		{"keys-sym-gen", true, []string{"keys", "sym", "gen", "-type", "AES256", "-id", "8"}, exitOK},
		{"cert-show", true, []string{"cert", "show"}, exitOK},
		{"reload", true, []string{"reload"}, exitOK},
		{"config-check", true, []string{"config", "check"}, exitFail},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			path, _ := fakeDaemon(t, tc.synced)
			var out, errb bytes.Buffer
			code := run(append([]string{"-socket", path}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, errb.String())
			}
			golden(t, tc.golden, out.Bytes())
		})
	}
}

// TestCtlArgs: flags become the request's arguments.
func TestCtlArgs(t *testing.T) {
	path, got := fakeDaemon(t, true)
	var out, errb bytes.Buffer
	for _, args := range [][]string{
		{"clients", "-n", "5"},
		{"keys", "nts", "prune", "-keep", "2"},
		{"keys", "nts", "prune", "--fleet"},
		{"keys", "sym", "gen", "-type", "AES256", "-id", "8"},
		{"keys", "sym", "remove", "8"},
	} {
		if code := run(append(args, "-socket", path), &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d %s", args, code, errb.String())
		}
	}
	want := []string{`clients {"N":5}`, `keys.nts.prune {"Keep":2}`, `keys.nts.prune {"Keep":1,"Fleet":true}`, `keys.sym.gen {"ID":8,"Type":"AES256"}`, `keys.sym.remove {"ID":8}`}
	if strings.Join(*got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant\n%s", strings.Join(*got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCtlJSON: -json prints the daemon's data as JSON that decodes to the same values.
func TestCtlJSON(t *testing.T) {
	path, _ := fakeDaemon(t, true)
	var out, errb bytes.Buffer
	if code := run([]string{"sources", "-json", "-socket", path}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d %s", code, errb.String())
	}
	var rows []report.Source
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	want := fixture(true)[gateway.CmdSources].([]report.Source)
	if len(rows) != len(want) || rows[2].State != report.SourceFalseticker || rows[0].Cookies != 7 || rows[3].Why != want[3].Why {
		t.Fatalf("JSON rows %+v", rows)
	}
	out.Reset()
	if code := run([]string{"status", "-json", "-socket", path}, &out, &errb); code != exitOK {
		t.Fatalf("status: exit %d %s", code, errb.String())
	}
	var st report.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	wantAudit := fixture(true)[gateway.CmdStatus].(report.Status).Audit
	if st.Audit == nil || st.Audit.Shipping == nil || *st.Audit.Shipping != *wantAudit.Shipping || st.Audit.DiskBytes != wantAudit.DiskBytes {
		t.Fatalf("JSON status audit %+v", st.Audit)
	}
	if !strings.Contains(out.String(), `"backlog_bytes": 1229`) {
		t.Errorf("JSON status without the audit backlog:\n%s", out.String())
	}
}

// TestCtlExitCodes: usage errors are 2; an unreachable socket 4; -h 0 on every command.
func TestCtlExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	missing := filepath.Join(t.TempDir(), "none.sock")
	if code := run([]string{"status", "-socket", missing}, &out, &errb); code != exitNoDaemon {
		t.Errorf("unreachable socket: exit %d", code)
	}
	path, _ := fakeDaemon(t, true)
	for _, args := range [][]string{{"status", "extra"}, {"clients", "-n", "0"}, {"keys", "sym", "remove"}, {"keys", "sym", "remove", "x"}, {"keys", "nts", "bogus"}, {"keys", "nts", "prune", "-keep", "0"}} {
		if code := run(append([]string{"-socket", path}, args...), &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	for _, c := range ctlCommands() {
		out.Reset()
		args := append(strings.Fields(c.name), "-h")
		if code := run(args, &out, &errb); code != exitOK || !strings.Contains(out.String(), "usage: gatectl "+c.name) {
			t.Errorf("%v: exit %d, output %q", args, code, out.String())
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"version"}, {"config", "check", "-h"}} {
		if code := run(args, &out, &errb); code != exitOK {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}
