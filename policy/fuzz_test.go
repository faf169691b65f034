package policy

import (
	"strings"
	"testing"
)

// FuzzParseRestrict: parsing never panics; an accepted rule is masked, its
// String re-parses to the same rule, and a policy of that rule alone decides
// its own network by it.
func FuzzParseRestrict(f *testing.F) {
	for _, l := range seedLines {
		f.Add(strings.TrimPrefix(l, "restrict "))
	}
	for _, l := range []string{
		"-4 default ignore", "192.0.2.0/24 limited kod", "2001:db8:: mask ffff:ffff:: noserve kod",
		"-6 2001:db8::/32 require-auth", "10.0.0.0 mask 255.0.0.0 notrust", "::ffff:0:0:0/96",
		"192.0.2.0 mask 255.0.255.0", "default version", "fe80::1%eth0", "DEFAULT KoD", "",
		"1.2.3.4 mask", "-6", "224.0.0.0/4 kod", "default limited limited lowpriotrap noepeer nomrulist",
	} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseRestrict(strings.Fields(line))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Fatalf("%q: error %q lacks the package prefix", line, err)
			}
			return
		}
		if r.Prefix.IsValid() && r.Prefix != r.Prefix.Masked() {
			t.Fatalf("%q: prefix %v not masked", line, r.Prefix)
		}
		s := r.String()
		r2, err := ParseRestrict(strings.Fields(s))
		if err != nil || r2 != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", line, r, s, r2, err)
		}
		p, err := New([]Rule{r})
		if err != nil {
			t.Fatalf("%q: New: %v", line, err)
		}
		if !r.Prefix.IsValid() {
			return
		}
		d := p.Decide(r.Prefix.Addr(), false)
		flags := r.Flags
		if r.Prefix.Bits() == 0 {
			flags |= builtinDefault
		}
		want := decide(flags, 0, false)
		if r.Prefix.Addr().IsMulticast() {
			want = Decision{Action: Drop, Cause: FlagIgnore, Rule: -1}
		}
		if d != want {
			t.Fatalf("%q: Decide(%v) = %+v, want %+v", line, r.Prefix.Addr(), d, want)
		}
	})
}
