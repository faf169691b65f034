package config

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// KeyStore is the `ntskeystore` line (timegate's own; chrony has none):
//
//	ntskeystore etcd://HOST:PORT[,HOST:PORT...]/PREFIX wrapkey FILE
//	            [delay SECONDS] [grace SECONDS] [ca FILE] [cert FILE key FILE]
//	            [user NAME passwordfile FILE]
type KeyStore struct {
	Endpoints []string // HOST:PORT of etcd members
	Prefix    string   // "/..." without a trailing slash
	WrapKey   string   // the fleet wrapping key file; never sent to etcd
	// Delay is the propagation delay between a key's publication and its
	// first cookie; 0 means DefaultKeyStoreDelay.
	Delay time.Duration
	// Grace is how long a superseded key keeps opening cookies; 0 means
	// nts.DefaultKeep rotation intervals.
	Grace        time.Duration
	CA           string // TLS to etcd when set
	Cert, Key    string // TLS client certificate
	User         string // etcd authentication
	PasswordFile string
}

// DefaultKeyStoreDelay is the default propagation delay: far more than an
// etcd watch takes to reach every member's clients (milliseconds), so a
// gateway that restarts or reconnects during a rotation still loads the key
// before any gateway seals with it.
const DefaultKeyStoreDelay = 10 * time.Minute

// ntsntpserver HOST [port N] — chrony's directive names the NTP host an
// NTS-KE reply announces; `port N` (timegate's) announces its port too, for
// a KE host whose NTP hosts serve another port than its own.
func ntsNTPServer(p *parser, name string, args []string) {
	if len(args) != 1 && (len(args) != 3 || args[1] != "port") {
		p.fail(name, "takes HOST [port N]")
		return
	}
	p.cfg.NTSNTPServer = args[0]
	if len(args) == 3 {
		if v, ok := p.intArg(name+" port", "port", args[2], 1, 65535); ok {
			p.cfg.NTSNTPPort = v
		}
	}
}

func keyStore(p *parser, name string, args []string) {
	const want = "etcd://HOST:PORT[,HOST:PORT...]/PREFIX wrapkey FILE [delay S] [grace S] [ca FILE] [cert FILE key FILE] [user NAME passwordfile FILE]"
	if len(args) == 0 {
		p.fail(name, "takes %s", want)
		return
	}
	ks := &KeyStore{}
	rest, ok := strings.CutPrefix(args[0], "etcd://")
	hosts, prefix, _ := strings.Cut(rest, "/")
	prefix = "/" + strings.TrimSuffix(prefix, "/")
	if !ok || hosts == "" || prefix == "/" || strings.Contains(prefix, "//") {
		p.fail(name, "want %s, got %q (the PREFIX must not be empty: it names this fleet's keys in etcd)", want, args[0])
		return
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			p.fail(name, "endpoint %q is not HOST:PORT", h)
			return
		}
		ks.Endpoints = append(ks.Endpoints, h)
	}
	ks.Prefix = prefix
	args = args[1:]
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			p.fail(name, "option %q needs a value", args[i])
			return
		}
		v := args[i+1]
		switch args[i] {
		case "wrapkey":
			ks.WrapKey = v
		case "delay":
			d, ok := p.secondsArg(name+" delay", v, 1, 7*86400)
			if !ok {
				return
			}
			ks.Delay = d
		case "grace":
			d, ok := p.secondsArg(name+" grace", v, 60, 365*86400)
			if !ok {
				return
			}
			ks.Grace = d
		case "ca":
			ks.CA = v
		case "cert":
			ks.Cert = v
		case "key":
			ks.Key = v
		case "user":
			ks.User = v
		case "passwordfile":
			ks.PasswordFile = v
		default:
			p.fail(name, "unknown option %q", args[i])
			return
		}
	}
	switch {
	case ks.WrapKey == "":
		p.fail(name, "needs wrapkey FILE: the fleet's keys are sealed under it and it never enters etcd")
	case (ks.Cert == "") != (ks.Key == ""):
		p.fail(name, "cert and key must be given together")
	case ks.Cert != "" && ks.CA == "":
		p.fail(name, "cert and key need ca FILE (TLS to etcd)")
	case (ks.User == "") != (ks.PasswordFile == ""):
		p.fail(name, "user and passwordfile must be given together")
	default:
		if ks.User != "" && ks.CA == "" {
			p.warn(name, "user and password go to etcd in the clear without ca FILE (TLS)")
		}
		p.cfg.NTSKeyStore = ks
	}
}
