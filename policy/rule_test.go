package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRestrict(t *testing.T) {
	const always = FlagNoModify | FlagNoTrap | FlagNoPeer | FlagNoQuery
	tests := []struct {
		line   string
		prefix string // "" = both-family default
		flags  Flags
		str    string // canonical String(); "" = line itself
	}{
		{"default kod nomodify notrap nopeer noquery", "", FlagKoD | always, "default kod nomodify noquery nopeer notrap"},
		{"-4 default ignore", "0.0.0.0/0", FlagIgnore, ""},
		{"-6 default kod nomodify notrap nopeer noquery", "::/0", FlagKoD | always, "-6 default kod nomodify noquery nopeer notrap"},
		{"192.0.2.0 mask 255.255.255.0 nomodify notrap", "192.0.2.0/24", FlagNoModify | FlagNoTrap, "192.0.2.0/24 nomodify notrap"},
		{"192.0.2.77 mask 255.255.255.0", "192.0.2.0/24", 0, "192.0.2.0/24"}, // host bits cleared, as ntpd does
		{"0.0.0.0 mask 0.0.0.0 limited", "0.0.0.0/0", FlagLimited, "-4 default limited"},
		{"10.0.0.0 mask 255.0.0.0 noserve kod", "10.0.0.0/8", FlagNoServe | FlagKoD, "10.0.0.0/8 noserve kod"},
		{"2001:db8:: mask ffff:ffff:: noserve", "2001:db8::/32", FlagNoServe, "2001:db8::/32 noserve"},
		{"192.0.2.0/24 limited kod", "192.0.2.0/24", FlagLimited | FlagKoD, ""},
		{"-4 192.0.2.0/24 limited", "192.0.2.0/24", FlagLimited, "192.0.2.0/24 limited"},
		{"-6 2001:db8::/32 require-auth kod", "2001:db8::/32", FlagRequireAuth | FlagKoD, "2001:db8::/32 require-auth kod"},
		{"-6 ::1", "::1/128", 0, "::1"},
		{"127.0.0.1", "127.0.0.1/32", 0, ""},
		{"192.0.2.1/32", "192.0.2.1/32", 0, "192.0.2.1"},
		{"DEFAULT KOD Limited", "", FlagKoD | FlagLimited, "default limited kod"},
		{"default notrust", "", FlagRequireAuth, "default require-auth"},
		{"default limited limited", "", FlagLimited, "default limited"},
		{"default noepeer lowpriotrap nomrulist", "", FlagNoEPeer | FlagLowPrioTrap | FlagNoMRUList, "default noepeer lowpriotrap nomrulist"},
		{"::ffff:0:0:0/96", "::ffff:0:0:0/96", 0, ""}, // IPv4-translated (RFC 2765), not mapped
	}
	for _, tt := range tests {
		r, err := ParseRestrict(strings.Fields(tt.line))
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		var want netip.Prefix
		if tt.prefix != "" {
			want = netip.MustParsePrefix(tt.prefix)
		}
		if r.Prefix != want || r.Flags != tt.flags {
			t.Errorf("%q = {%v %v}, want {%v %v}", tt.line, r.Prefix, r.Flags, want, tt.flags)
		}
		str := tt.str
		if str == "" {
			str = tt.line
		}
		if r.String() != str {
			t.Errorf("%q.String() = %q, want %q", tt.line, r.String(), str)
		}
	}
}

func TestParseRestrictErrors(t *testing.T) {
	tests := []struct {
		line string
		err  error
		msg  string
	}{
		{"", ErrSyntax, "missing address"},
		{"-4", ErrSyntax, "missing address"},
		{"ntp.example.com kod", ErrAddress, "host names are not resolved"},
		{"-6 -4 default", ErrAddress, `"-4"`},
		{"192.0.2.0/33", ErrAddress, ""},
		{"-6 192.0.2.1", ErrAddress, "not an IPv6 address"},
		{"-4 ::1", ErrAddress, "not an IPv4 address"},
		{"-4 2001:db8::/32", ErrAddress, "not an IPv4 address"},
		{"::ffff:192.0.2.1", ErrAddress, "IPv4-mapped"},
		{"::ffff:192.0.2.0/120", ErrAddress, "IPv4-mapped"},
		{"fe80::1%eth0", ErrAddress, "zones"},
		{"fe80::/64%eth0", ErrAddress, ""},
		{"192.0.2.0 mask 255.0.255.0", ErrMask, "not contiguous"},
		{"192.0.2.0 mask 0.255.255.255", ErrMask, "not contiguous"},
		{"2001:db8:: mask ffff:0:ffff::", ErrMask, "not contiguous"},
		{"192.0.2.0 mask ffff::", ErrMask, "family"},
		{"2001:db8:: mask 255.255.0.0", ErrMask, "family"},
		{"192.0.2.0 mask", ErrMask, "missing"},
		{"192.0.2.0/24 mask 255.255.255.0", ErrMask, "plain address"},
		{"default mask 0.0.0.0", ErrMask, ""},
		{"default kod nosrve", ErrUnknownFlag, `"nosrve"`},
		{"192.0.2.0/24 allow", ErrUnknownFlag, `"allow"`},
		{"default version", ErrUnsupportedFlag, `"version"`},
		{"default ntpport", ErrUnsupportedFlag, `"ntpport"`},
		{"default mssntp", ErrUnsupportedFlag, `"mssntp"`},
		{"default flake", ErrUnsupportedFlag, `"flake"`},
		{"source kod", ErrAddress, `"source"`},
	}
	for _, tt := range tests {
		_, err := ParseRestrict(strings.Fields(tt.line))
		if !errors.Is(err, tt.err) {
			t.Errorf("%q: error %v, want %v", tt.line, err, tt.err)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "policy: ") {
			t.Errorf("%q: error %q, want it to start with \"policy: \" and contain %q", tt.line, err, tt.msg)
		}
	}
}

func TestMaskBits(t *testing.T) {
	for bits := 0; bits <= 32; bits++ {
		p := netip.PrefixFrom(netip.IPv4Unspecified(), 32)
		m := maskOf(p.Addr(), bits)
		got, err := maskBits(p.Addr(), m.String())
		if err != nil || got != bits {
			t.Errorf("IPv4 mask %v: %d, %v; want %d", m, got, err, bits)
		}
	}
	for bits := 0; bits <= 128; bits++ {
		a := netip.IPv6Unspecified()
		m := maskOf(a, bits)
		got, err := maskBits(a, m.String())
		if err != nil || got != bits {
			t.Errorf("IPv6 mask %v: %d, %v; want %d", m, got, err, bits)
		}
	}
}

// maskOf returns the contiguous mask of n bits in a's family.
func maskOf(a netip.Addr, n int) netip.Addr {
	b := make([]byte, a.BitLen()/8)
	for i := range n {
		b[i/8] |= 0x80 >> (i % 8)
	}
	m, _ := netip.AddrFromSlice(b)
	return m
}
