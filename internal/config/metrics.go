package config

import (
	"net/netip"
)

// metrics ADDR:PORT: serve Prometheus metrics, /healthz and /readyz over HTTP
// at ADDR:PORT. The endpoint has no authentication and shows which upstreams
// are used and how the server is loaded, so it binds exactly where the
// operator says: ADDR must be an IP literal, and serving every address is
// written out ("0.0.0.0:9123", "[::]:9123") rather than implied by ":9123".
func metricsDirective(p *parser, name string, args []string) {
	if !p.exactly(name, args, 1) {
		return
	}
	ap, err := netip.ParseAddrPort(args[0])
	switch {
	case err != nil:
		p.fail(name, "must be ADDR:PORT with an IP address (\"127.0.0.1:9123\", \"[::1]:9123\"), got %q", args[0])
	case ap.Addr().Zone() != "":
		p.fail(name, "zoned addresses are not supported, got %q", args[0])
	case ap.Port() == 0:
		p.fail(name, "port must be 1..65535, got %q", args[0])
	default:
		p.cfg.Metrics = ap
	}
}
