package keproc

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"timegate/internal/kelisten"
)

func TestFailuresRoundTrip(t *testing.T) {
	in := []Failure{
		{netip.MustParseAddr("192.0.2.7"), kelisten.FailHandshake},
		{netip.MustParseAddr("2001:db8::1"), kelisten.FailRate},
		{netip.MustParseAddr("198.51.100.1"), kelisten.FailTotalCap},
	}
	var b []byte
	for _, f := range in {
		b = appendFailure(b, f)
	}
	var out []Failure
	if err := parseFailures(b, func(f Failure) { out = append(out, f) }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d failures, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i] != in[i] { // IPv4 comes back unmapped, as it went
			t.Errorf("failure %d: %+v, want %+v", i, out[i], in[i])
		}
	}
}

// A helper's failure message is refused whole when it is not made of whole
// records of reasons kelisten names: nothing of it reaches the audit trail.
func TestFailuresRefused(t *testing.T) {
	good := appendFailure(nil, Failure{netip.MustParseAddr("192.0.2.1"), kelisten.FailIO})
	cases := map[string][]byte{
		"empty":       nil,
		"short":       good[:failureLen-1],
		"long":        append(append([]byte{}, good...), 0),
		"reason none": append(append([]byte{}, good[:16]...), kelisten.FailNone),
		"reason 200":  append(append([]byte{}, good[:16]...), 200),
		"too many":    bytes.Repeat(good, maxFailuresPerMessage+1),
		"bad second":  append(append([]byte{}, good...), append(good[:16:16], 200)...),
	}
	for name, p := range cases {
		n := 0
		err := parseFailures(p, func(Failure) { n++ })
		if !errors.Is(err, errMessage) {
			t.Errorf("%s: err %v, want errMessage", name, err)
		}
		if n != 0 {
			t.Errorf("%s: %d failures emitted from a refused message", name, n)
		}
	}
}

func TestCertRoundTrip(t *testing.T) {
	msg := encodeCert([]byte("CHAIN"), []byte("KEY"))
	if msg[0] != msgCert {
		t.Fatalf("type %q", msg[0])
	}
	chain, key, err := parseCert(msg[1:])
	if err != nil || string(chain) != "CHAIN" || string(key) != "KEY" {
		t.Fatalf("got %q %q %v", chain, key, err)
	}
	for _, bad := range [][]byte{nil, {0, 0, 0}, {0, 0, 0, 0, 'k'}, {0, 0, 0, 9, 'c'}, {0, 0, 0, 1, 'c'}} {
		if _, _, err := parseCert(bad); !errors.Is(err, errMessage) {
			t.Errorf("%x: err %v, want errMessage", bad, err)
		}
	}
}

// FuzzParseFailures: any payload is refused or yields whole, named records,
// never more than the payload holds.
func FuzzParseFailures(f *testing.F) {
	f.Add(appendFailure(nil, Failure{netip.MustParseAddr("192.0.2.1"), kelisten.FailIO}))
	f.Add(appendFailure(appendFailure(nil, Failure{netip.MustParseAddr("::1"), kelisten.FailRate}),
		Failure{netip.MustParseAddr("10.0.0.1"), kelisten.FailTimeout}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		n := 0
		err := parseFailures(p, func(fl Failure) {
			n++
			if !fl.Addr.IsValid() || kelisten.FailureName(fl.Reason) == "unknown" || fl.Reason == kelisten.FailNone {
				t.Fatalf("emitted %+v", fl)
			}
		})
		if err == nil && n != len(p)/failureLen {
			t.Fatalf("%d records from %d octets", n, len(p))
		}
	})
}

// FuzzParseCert: the two parts always lie inside the payload, in order,
// both non-empty.
func FuzzParseCert(f *testing.F) {
	f.Add(encodeCert([]byte("-----BEGIN CERTIFICATE-----"), []byte("-----BEGIN PRIVATE KEY-----"))[1:])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		chain, key, err := parseCert(p)
		if err != nil {
			return
		}
		if len(chain) == 0 || len(key) == 0 || 4+len(chain)+len(key) != len(p) {
			t.Fatalf("chain %d key %d of %d", len(chain), len(key), len(p))
		}
	})
}
