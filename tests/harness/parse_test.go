package harness_test

import (
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// The rows below are real chronyc 4.3 -c output (Debian bookworm), captured from
// a loopback client with an NTS source (127.0.0.1), a symmetric-key source
// (127.0.0.2), a plain source (::1) and a faketime'd +3 s source (127.0.0.3).

func rows(s string) [][]string {
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		out = append(out, strings.Split(l, ","))
	}
	return out
}

func TestParseSources(t *testing.T) {
	got, err := harness.ParseSources(rows(`
^,*,127.0.0.1,5,-4,377,0,0.000000080,0.000000013,0.000001695
^,x,127.0.0.3,5,-4,377,0,-3.000014067,-3.000014067,0.000016550
^,?,127.0.0.1,0,0,0,4294967295,0.000000000,0.000000000,0.000000000`))
	if err != nil {
		t.Fatal(err)
	}
	want := []harness.Source{
		{Mode: "^", State: "*", Name: "127.0.0.1", Stratum: 5, Poll: -4, Reach: 0xff, LastRx: 0,
			AdjustedOffset: 0.000000080, MeasuredOffset: 0.000000013, ErrorBound: 0.000001695},
		{Mode: "^", State: "x", Name: "127.0.0.3", Stratum: 5, Poll: -4, Reach: 0xff, LastRx: 0,
			AdjustedOffset: -3.000014067, MeasuredOffset: -3.000014067, ErrorBound: 0.000016550},
		{Mode: "^", State: "?", Name: "127.0.0.1", LastRx: -1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d sources, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if !got[0].Selected() || got[1].Selected() {
		t.Error("Selected() wrong")
	}
	if _, err := harness.ParseSources(rows(`^,*,127.0.0.1,5,-4,377,0`)); err == nil {
		t.Error("short row accepted")
	}
	if _, err := harness.ParseSources(rows(`^,*,127.0.0.1,5,-4,389,0,0,0,0`)); err == nil {
		t.Error("non-octal reach accepted")
	}
}

func TestParseAuthData(t *testing.T) {
	got, err := harness.ParseAuthData(rows(`
127.0.0.1,NTS,1,15,256,5,0,0,8,100
127.0.0.2,SK,1,13,128,4294967295,0,0,0,0
::1,-,0,0,0,4294967295,0,0,0,0`))
	if err != nil {
		t.Fatal(err)
	}
	want := []harness.AuthData{
		{Name: "127.0.0.1", Mode: "NTS", KeyID: 1, Type: 15, KeyLen: 256, LastKE: 5, Cookies: 8, CookieLen: 100},
		{Name: "127.0.0.2", Mode: "SK", KeyID: 1, Type: 13, KeyLen: 128, LastKE: -1},
		{Name: "::1", Mode: "-", LastKE: -1},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if a, ok := harness.FindAuthData(got, "127.0.0.2"); !ok || a.Mode != "SK" {
		t.Errorf("FindAuthData = %+v, %v", a, ok)
	}
}

func TestParseTracking(t *testing.T) {
	got, err := harness.ParseTracking(rows(`7F000001,127.0.0.1,6,1795780653.182407122,-0.000001251,-0.000000067,0.000000058,0.005,-0.107,0.024,0.000003116,0.000000374,0.1,Normal`))
	if err != nil {
		t.Fatal(err)
	}
	want := harness.Tracking{RefID: "7F000001", RefName: "127.0.0.1", Stratum: 6,
		RefTime: time.Unix(1795780653, 182407122).UTC(), SystemTime: -0.000001251, LastOffset: -0.000000067,
		RMSOffset: 0.000000058, Frequency: 0.005, ResidualFreq: -0.107, Skew: 0.024, RootDelay: 0.000003116,
		RootDispersion: 0.000000374, UpdateInterval: 0.1, Leap: "Normal"}
	if got != want {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	unsync, err := harness.ParseTracking(rows(`00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised`))
	if err != nil || !unsync.RefTime.IsZero() || unsync.Leap != "Not synchronised" || unsync.Stratum != 0 {
		t.Errorf("unsynchronised: %+v, %v", unsync, err)
	}
}

func TestParseServerStats(t *testing.T) {
	got, err := harness.ParseServerStats(rows(`184,0,2,0,0,1,0,91,0,0,0`))
	if err != nil {
		t.Fatal(err)
	}
	want := harness.ServerStats{NTPPackets: 184, CmdPackets: 2, NTSKEAccepted: 1, AuthNTPPackets: 91}
	if got != want {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	if _, err := harness.ParseServerStats(rows(`184,0,2,0,0,1,0,91`)); err == nil {
		t.Error("an 8-field (pre-4.x) row was accepted")
	}
}

func TestParseClients(t *testing.T) {
	got, err := harness.ParseClients(rows(`127.0.0.1,543,0,-4,127,0,0,0,127,4294967295`))
	if err != nil {
		t.Fatal(err)
	}
	want := harness.Client{Addr: "127.0.0.1", NTPHits: 543, NTPInterval: -4, NTPLastIntv: 127, CmdInterval: 127, CmdLast: -1}
	if len(got) != 1 || got[0] != want {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
}

func TestParseSourceStats(t *testing.T) {
	got, err := harness.ParseSourceStats(rows(`127.0.0.3,60,31,7,-0.006,0.129,-3.000006914,0.000000461`))
	if err != nil {
		t.Fatal(err)
	}
	want := harness.SourceStats{Name: "127.0.0.3", Samples: 60, Runs: 31, Span: 7, Frequency: -0.006, FreqSkew: 0.129, Offset: -3.000006914, StdDev: 0.000000461}
	if len(got) != 1 || got[0] != want {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
}

func TestParseNTPData(t *testing.T) {
	m, err := harness.ParseNTPData(rows(`127.0.0.1,7F000001,11123,127.0.0.1,7F000001,Normal,4,Server,5,-4,0,-26,0.000000015,0.000000,0.000000,7F7F0101,,1795780646.113081253,-0.000000765,0.000005095,0.000000035,0.000054337,0.47,111,111,1101,No,Yes,Kernel,Kernel,91,91,91,60`)[0])
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"Remote address": "127.0.0.1", "Remote port": "11123", "Leap status": "Normal", "Version": "4",
		"Mode": "Server", "Stratum": "5", "Poll interval": "-4", "Precision": "-26", "Reference ID": "7F7F0101",
		"Reference name": "", "Offset": "-0.000000765", "NTP tests C": "1101", "Interleaved": "No",
		"Authenticated": "Yes", "TX timestamping": "Kernel", "Total TX": "91", "Total good RX": "60",
	} {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if len(m) != len(harness.NTPDataFields) {
		t.Errorf("%d keys, want %d", len(m), len(harness.NTPDataFields))
	}
	if _, err := harness.ParseNTPData([]string{"127.0.0.1", "x"}); err == nil {
		t.Error("short row accepted")
	}
}
