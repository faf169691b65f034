package config

import (
	"net/netip"
	"strconv"
	"strings"

	"timegate/policy"
)

// compatDirective returns the handlers of chrony's and ntpd's directives
// that map onto timegate's own (keys → keyfile, tos minsane → minsources,
// allow/deny → restrict rules, ...), or that timegate implements as they do
// (include, confdir, sourcedir, trustedkey, nosystemcert).
func compatDirective(name string) (handler, bool) {
	switch name {
	case "allow", "deny":
		return handler{accessDirective, false}, true
	case "tos":
		return handler{tos, false}, true
	case "keys":
		return handler{keysDirective, false}, true
	case "trustedkey":
		return handler{trustedKey, false}, true
	case "fudge":
		return handler{fudge, false}, true
	case "interface", "nic":
		return handler{iface, false}, true
	case "include", "includefile", "confdir", "sourcedir":
		return handler{includeDirective, false}, true
	case "ntscachedir":
		return handler{ntsCacheDir, false}, true
	case "nosystemcert":
		return handler{noSystemCert, true}, true
	case "nts":
		return handler{ntpsecNTS, false}, true
	case "ntsaeads":
		return handler{ntsAEADs, true}, true
	case "maxntsconnections":
		return handler{maxNTSConnections, true}, true
	case "ntsprocesses":
		return handler{ntsProcesses, true}, true
	}
	return handler{}, false
}

// access is one chrony allow/deny line, applied in order at the end: an
// `all` line overrides the more specific lines before it, which a
// longest-prefix rule set cannot express by itself.
type access struct {
	pos    Position
	deny   bool
	all    bool
	prefix netip.Prefix // invalid: every address of both families
}

// allow|deny [all] [SUBNET] — chrony's NTP access rules. SUBNET is an
// address, ADDR/BITS, or chrony's short IPv4 form ("192.168" = 192.168/16);
// none means every address. With any allow or deny line, what no line
// covers is denied, as in chrony.
func accessDirective(p *parser, name string, args []string) {
	a := access{pos: p.pos, deny: name == "deny"}
	if len(args) > 0 && strings.EqualFold(args[0], "all") {
		a.all, args = true, args[1:]
	}
	if len(args) > 1 {
		p.fail(name, "takes [all] [SUBNET], got %d arguments", len(args)+btoi(a.all))
		return
	}
	if len(args) == 1 {
		pfx, ok := chronySubnet(args[0])
		if !ok {
			p.fail(name, "not an address or subnet: %q (host names are not resolved here: write the address)", args[0])
			return
		}
		a.prefix = pfx
	}
	p.access = append(p.access, a)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// chronySubnet parses ADDR, ADDR/BITS and chrony's short IPv4 forms.
func chronySubnet(s string) (netip.Prefix, bool) {
	addr, bitsText, hasBits := strings.Cut(s, "/")
	bits := -1
	if hasBits {
		v, err := strconv.Atoi(bitsText)
		if err != nil || v < 0 {
			return netip.Prefix{}, false
		}
		bits = v
	}
	if a, err := netip.ParseAddr(addr); err == nil && a.Zone() == "" {
		if bits < 0 {
			bits = a.BitLen()
		}
		pfx, err := a.Unmap().Prefix(bits)
		return pfx, err == nil
	}
	// chrony: "1.2.3" is 1.2.3.0/24, "10" is 10.0.0.0/8.
	octets := strings.Split(addr, ".")
	if len(octets) > 3 {
		return netip.Prefix{}, false
	}
	var b [4]byte
	for i, o := range octets {
		v, err := strconv.Atoi(o)
		if err != nil || v < 0 || v > 255 || o == "" {
			return netip.Prefix{}, false
		}
		b[i] = byte(v)
	}
	if bits < 0 {
		bits = 8 * len(octets)
	}
	pfx, err := netip.AddrFrom4(b).Prefix(bits)
	return pfx, err == nil
}

// finishAccess turns the allow/deny lines into restrict rules: allowed
// networks are served and rate limited (chrony applies ratelimit to every
// client), denied ones ignored, and the rest denied unless a restrict
// default line says otherwise.
func (p *parser) finishAccess() {
	if len(p.access) == 0 {
		return
	}
	var order []string
	rules := map[string]access{}
	for _, a := range p.access {
		key := "default"
		if a.prefix.IsValid() {
			key = a.prefix.Masked().String()
		}
		if a.all {
			for k, old := range rules {
				if k != key && covers(a.prefix, old.prefix) {
					delete(rules, k)
				}
			}
		}
		if _, ok := rules[key]; !ok {
			order = append(order, key)
		}
		rules[key] = a
	}
	if _, ok := rules["default"]; !ok && !p.hasRestrictDefault() {
		rules["default"] = access{pos: p.access[0].pos, deny: true}
		order = append(order, "default")
	}
	for _, key := range order {
		a, ok := rules[key]
		if !ok {
			continue
		}
		args := []string{key, "limited"}
		if a.deny {
			args = []string{key, "ignore"}
		}
		rule, err := policy.ParseRestrict(args)
		if err != nil { // unreachable: the prefix was parsed above
			p.addErr(errorAt(a.pos, "allow", err.Error()))
			continue
		}
		p.cfg.Restrict = append(p.cfg.Restrict, Restrict{Pos: a.pos, Args: args, Rule: rule})
	}
}

// covers reports whether outer (invalid = everything) contains inner.
func covers(outer, inner netip.Prefix) bool {
	if !outer.IsValid() {
		return true
	}
	return inner.IsValid() && inner.Bits() >= outer.Bits() && outer.Contains(inner.Addr())
}

func (p *parser) hasRestrictDefault() bool {
	for _, r := range p.cfg.Restrict {
		if len(r.Args) > 0 && (strings.EqualFold(r.Args[0], "default") ||
			(len(r.Args) > 1 && strings.EqualFold(r.Args[1], "default"))) {
			return true
		}
	}
	return false
}

// restrictHost returns the host name a restrict line names instead of an
// address (ntpd resolves it at start-up), or "".
func restrictHost(args []string) string {
	if len(args) > 1 && (args[0] == "-4" || args[0] == "-6") {
		args = args[1:]
	}
	w := args[0]
	if _, err := netip.ParseAddr(w); err == nil || strings.EqualFold(w, "default") || strings.Contains(w, "/") {
		return ""
	}
	letter := false
	for _, r := range w {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letter = true
		case r >= '0' && r <= '9', r == '.', r == '-':
		default:
			return ""
		}
	}
	if !letter {
		return ""
	}
	return w
}

// restrictHostname handles `restrict HOST ...`: timegate resolves no names
// in its configuration. A line that only grants (or holds the flags timegate
// always applies) has no effect and warns; one that would deny or limit the
// host is refused, since dropping it would serve what the operator barred.
func restrictHostname(p *parser, name, host string, args []string) {
	for _, w := range args {
		switch strings.ToLower(w) {
		case "ignore", "noserve", "notrust", "require-auth", "limited", "kod":
			p.fail(name, "%s: host names are not resolved here and this rule restricts: write the address (restrict ADDR ...)", host)
			return
		}
	}
	p.warn(name, "%s: host names are not resolved here: no effect (the rule grants nothing timegate does not already grant)", host)
}

// maxntsconnections N — chrony: concurrent NTS-KE sessions. Bounded, since
// every session holds a TLS handshake's memory.
// ntsprocesses N: chrony's, with its meaning: N helper processes serve
// NTS-KE; 0 serves it in the daemon's own process.
func ntsProcesses(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) {
		if v, ok := p.intArg(name, "number of processes", args[0], 0, MaxNTSProcesses); ok {
			p.cfg.NTSProcesses = v
		}
	}
}

func maxNTSConnections(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) {
		if v, ok := p.intArg(name, "value", args[0], 1, 65536); ok {
			p.cfg.MaxNTSConnections = v
		}
	}
}
