package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// Errors of ParseRestrict and New; each error wraps exactly one of them.
var (
	ErrSyntax          = errors.New("policy: bad restrict rule")
	ErrAddress         = errors.New("policy: bad address")
	ErrMask            = errors.New("policy: bad mask")
	ErrUnknownFlag     = errors.New("policy: unknown flag")
	ErrUnsupportedFlag = errors.New("policy: unsupported flag")
	ErrTooManyRules    = errors.New("policy: too many rules")
)

// Flags are the restrict flags of a rule.
type Flags uint16

// Flags that change what timegate does.
const (
	// FlagIgnore drops every packet from the network, silently.
	FlagIgnore Flags = 1 << iota
	// FlagNoServe refuses time: a DENY kiss with FlagKoD, else silence.
	FlagNoServe
	// FlagRequireAuth (timegate's own; ntpd's "notrust" is an alias) serves
	// only requests authenticated with NTS or a symmetric key: others get
	// an RSTR kiss with FlagKoD, else silence.
	FlagRequireAuth
	// FlagLimited subjects the network to the gateway's ratelimit.
	FlagLimited
	// FlagKoD sends kisses instead of silence: RATE when over the rate
	// limit, DENY for noserve, RSTR for require-auth (RFC 5905 §7.4).
	FlagKoD

	// The flags below concern ntpd services timegate never offers on the
	// network at all: control (mode 6) and private (mode 7) queries, traps,
	// peer associations and remote configuration. They are accepted so that
	// an ntp.conf restrict line reads unchanged, and are always on, except
	// nopeer: without it, a symmetric-active (mode 1) request is answered
	// statelessly in mode 2, as ntpd and chronyd do (w32time polls so).

	FlagNoModify    // no remote configuration
	FlagNoQuery     // no mode 6/7 queries
	FlagNoPeer      // no symmetric associations; refuses mode 1 requests
	FlagNoEPeer     // no ephemeral symmetric associations
	FlagNoTrap      // no mode 6 traps
	FlagLowPrioTrap // traps (there are none) at low priority
	FlagNoMRUList   // no MRU-list (monlist-style) queries
)

// flagNames lists the flag words in canonical (String) order.
var flagNames = [...]struct {
	name string
	flag Flags
}{
	{"ignore", FlagIgnore},
	{"noserve", FlagNoServe},
	{"require-auth", FlagRequireAuth},
	{"limited", FlagLimited},
	{"kod", FlagKoD},
	{"nomodify", FlagNoModify},
	{"noquery", FlagNoQuery},
	{"nopeer", FlagNoPeer},
	{"noepeer", FlagNoEPeer},
	{"notrap", FlagNoTrap},
	{"lowpriotrap", FlagLowPrioTrap},
	{"nomrulist", FlagNoMRUList},
}

// alias returns the timegate flag an ntpd word stands for. ntpd 4.2.8 and
// NTPsec define notrust as "deny service unless the packet is
// cryptographically authenticated", which is require-auth.
func alias(w string) (Flags, bool) {
	if w == "notrust" {
		return FlagRequireAuth, true
	}
	return 0, false
}

// unsupported explains the ntpd words whose meaning timegate does not
// implement: reading them as no-ops would silently weaken what the operator
// asked for.
func unsupported(w string) string {
	switch w {
	case "version":
		return "requests of NTP versions 3 and 4 are answered alike"
	case "ntpport", "non-ntpport":
		return "rules match addresses, never ports"
	case "mssntp":
		return "MS-SNTP is not supported"
	case "flake":
		return "random packet loss is not supported"
	case "serverresponse":
		return "serverresponse fuzz is not supported"
	case "ippeerlimit":
		return "peer associations do not exist"
	case "interface":
		return "rules match source addresses only"
	}
	return ""
}

// Rule is one restrict line.
type Rule struct {
	// Prefix is the network the rule covers, masked. The zero Prefix, from
	// "default" without -4 or -6, covers every address of both families.
	Prefix netip.Prefix
	Flags  Flags
}

// ParseRestrict parses the words of an ntpd restrict directive after the
// keyword itself:
//
//	[-4|-6] default FLAG...
//	[-4|-6] ADDRESS [mask MASK] FLAG...
//	[-4|-6] ADDRESS/LENGTH FLAG...
//
// ADDRESS is an IPv4 or IPv6 literal (host names are not resolved); without a
// mask or length it is one host. Host bits are cleared, as ntpd does. A mask
// must be of the address's family and contiguous. Flags are case-insensitive
// and may repeat; an unknown or unsupported flag is an error naming it.
func ParseRestrict(args []string) (Rule, error) {
	var r Rule
	fam := 0
	if len(args) > 0 && (args[0] == "-4" || args[0] == "-6") {
		fam = 4
		if args[0] == "-6" {
			fam = 6
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return r, fmt.Errorf("%w: missing address", ErrSyntax)
	}
	p, rest, err := parseTarget(fam, args[0], args[1:])
	if err != nil {
		return r, err
	}
	r.Prefix = p
	for _, w := range rest {
		f, err := parseFlag(w)
		if err != nil {
			return Rule{}, err
		}
		r.Flags |= f
	}
	return r, nil
}

// parseTarget parses the address part of a rule and returns the flag words
// after it.
func parseTarget(fam int, word string, rest []string) (netip.Prefix, []string, error) {
	if strings.EqualFold(word, "default") {
		switch fam {
		case 4:
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0), rest, nil
		case 6:
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0), rest, nil
		}
		return netip.Prefix{}, rest, nil
	}
	var p netip.Prefix
	if strings.Contains(word, "/") {
		var err error
		if p, err = netip.ParsePrefix(word); err != nil {
			return p, nil, fmt.Errorf("%w %q: %v", ErrAddress, word, err)
		}
	} else {
		a, err := netip.ParseAddr(word)
		if err != nil {
			return p, nil, fmt.Errorf("%w %q: not an IP address (host names are not resolved)", ErrAddress, word)
		}
		bitLen := a.BitLen()
		if len(rest) > 0 && strings.EqualFold(rest[0], "mask") {
			if len(rest) < 2 {
				return p, nil, fmt.Errorf("%w: missing after %q", ErrMask, "mask")
			}
			if bitLen, err = maskBits(a, rest[1]); err != nil {
				return p, nil, err
			}
			rest = rest[2:]
		}
		if a.Zone() != "" {
			return p, nil, fmt.Errorf("%w %q: zones cannot be matched", ErrAddress, word)
		}
		p = netip.PrefixFrom(a, bitLen)
	}
	a := p.Addr()
	switch {
	case a.Is4In6():
		return p, nil, fmt.Errorf("%w %q: IPv4-mapped; sources are matched as IPv4, write the IPv4 form", ErrAddress, word)
	case fam == 4 && !a.Is4(), fam == 6 && !a.Is6():
		return p, nil, fmt.Errorf("%w %q: not an IPv%d address", ErrAddress, word, fam)
	}
	return p.Masked(), rest, nil
}

// maskBits returns the prefix length a mask spells.
func maskBits(a netip.Addr, word string) (int, error) {
	m, err := netip.ParseAddr(word)
	if err != nil || m.Is4() != a.Is4() || m.Zone() != "" || m.Is4In6() {
		return 0, fmt.Errorf("%w %q: not a mask of the address's family", ErrMask, word)
	}
	b := m.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	if m.Is4() {
		hi, lo = lo<<32, 0
	}
	n := bits.LeadingZeros64(^hi)
	if n == 64 {
		n += bits.LeadingZeros64(^lo)
	}
	if bits.OnesCount64(hi)+bits.OnesCount64(lo) != n {
		return 0, fmt.Errorf("%w %q: not contiguous", ErrMask, word)
	}
	return n, nil
}

func parseFlag(w string) (Flags, error) {
	lw := strings.ToLower(w)
	for _, fn := range flagNames {
		if lw == fn.name {
			return fn.flag, nil
		}
	}
	if f, ok := alias(lw); ok {
		return f, nil
	}
	if why := unsupported(lw); why != "" {
		return 0, fmt.Errorf("%w %q: %s", ErrUnsupportedFlag, w, why)
	}
	if lw == "mask" {
		return 0, fmt.Errorf("%w: mask must follow a plain address", ErrMask)
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownFlag, w)
}

// String returns the rule as restrict arguments that ParseRestrict reads
// back to the same rule: "default", "-4 default", "-6 default", a host
// address or a CIDR prefix, then the flags in canonical order.
func (r Rule) String() string {
	var sb strings.Builder
	p := r.Prefix
	switch {
	case !p.IsValid():
		sb.WriteString("default")
	case p.Bits() == 0 && p.Addr().Is4():
		sb.WriteString("-4 default")
	case p.Bits() == 0:
		sb.WriteString("-6 default")
	case p.IsSingleIP():
		sb.WriteString(p.Addr().String())
	default:
		sb.WriteString(p.String())
	}
	if f := r.Flags.String(); f != "" {
		sb.WriteByte(' ')
		sb.WriteString(f)
	}
	return sb.String()
}

// String returns the flag words in canonical order, separated by spaces.
func (f Flags) String() string {
	var sb strings.Builder
	for _, fn := range flagNames {
		if f&fn.flag != 0 {
			if sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(fn.name)
		}
	}
	return sb.String()
}
