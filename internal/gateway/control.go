package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
	"timegate/internal/config"
	"timegate/internal/control"
	"timegate/internal/report"
)

// Control commands. The names are the protocol's; gatectl maps its command
// words onto them.
const (
	CmdStatus      = "status"
	CmdSources     = "sources"
	CmdServerStats = "serverstats"
	CmdClients     = "clients"
	CmdKeysList    = "keys.nts.list"
	CmdKeysRotate  = "keys.nts.rotate"
	CmdKeysPrune   = "keys.nts.prune"
	CmdSymList     = "keys.sym.list"
	CmdSymGen      = "keys.sym.gen"
	CmdSymRemove   = "keys.sym.remove"
	CmdCertShow    = "cert.show"
	CmdCertReload  = "cert.reload"
	CmdReload      = "reload"
	CmdConfigCheck = "config.check"
	// CmdPolicyPublish publishes a policy file to the fleet store.
	CmdPolicyPublish = "policy.publish"
	// CmdAuditRotate seals the live audit file and starts the next one.
	CmdAuditRotate = "audit.rotate"
)

// MaxClients bounds `clients -n`: the table may hold a million prefixes and
// an answer must stay small.
const MaxClients = 1000

// Argument and result types of the commands that have them.
type (
	ClientsArgs struct{ N int }
	// PruneArgs: Fleet revokes fleet-wide (ntskeystore): a cutoff every
	// gateway applies at once.
	PruneArgs struct {
		Keep  int
		Fleet bool `json:",omitempty"`
	}
	RotateArgs struct{ Fleet bool }
	// PolicyArgs names the policy file; gatectl makes the path absolute,
	// and the daemon reads it as its own user.
	PolicyArgs   struct{ File string }
	PolicyResult struct{ Published time.Time }
	PruneResult  struct{ Dropped int }
	SymGenArgs   struct {
		ID   uint32
		Type string
	}
	SymGenResult struct {
		ID   uint32
		Type string
		// Line is the keys-file line, secret included, for the client's
		// own keys file: the only time the secret leaves the daemon.
		Line string
		File string
	}
	SymRemoveArgs struct{ ID uint32 }
	SymKey        struct {
		ID     uint32
		Type   string
		Legacy bool
	}
	SymList struct {
		File string
		Keys []SymKey
	}
	ReloadResult struct{ Warnings []string }
	// AuditRotateResult names the segment a rotation sealed: the file and
	// the seq range it holds (Last is its closing checkpoint).
	AuditRotateResult struct {
		Segment     string
		First, Last uint64
		Pruned      []string // segments retention deleted after it
	}
	CheckResult struct {
		File     string
		Problems []string
		Warnings []string
	}
)

// Handle implements control.Handler.
func (g *Gateway) Handle(ctx context.Context, _ control.Cred, cmd string, args json.RawMessage) (any, error) {
	switch cmd {
	case CmdStatus:
		return g.Status(), nil
	case CmdSources:
		rows, err := g.Sources(ctx)
		if err != nil {
			return nil, control.Failed("sources: %v", err)
		}
		return rows, nil
	case CmdServerStats:
		return g.ServerStats(), nil
	case CmdClients:
		var a ClientsArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		if a.N <= 0 || a.N > MaxClients {
			return nil, control.Failed("clients: -n must be 1..%d, got %d", MaxClients, a.N)
		}
		return g.Clients(a.N), nil
	case CmdKeysList:
		return g.keyRingOrFail()
	case CmdKeysRotate:
		var a RotateArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		if err := g.RotateNTSKeys(a.Fleet); err != nil {
			return nil, control.Failed("%v", err)
		}
		return g.keyRingOrFail()
	case CmdKeysPrune:
		return g.pruneKeys(args)
	case CmdPolicyPublish:
		var a PolicyArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		at, err := g.PublishFleetPolicy(a.File)
		if err != nil {
			return nil, control.Failed("policy not published: %v", err)
		}
		return PolicyResult{Published: at}, nil
	case CmdSymList, CmdSymGen, CmdSymRemove:
		return g.symKeys(cmd, args)
	case CmdCertShow, CmdCertReload:
		return g.certCommand(cmd)
	case CmdReload:
		w, err := g.reload()
		if err != nil {
			return nil, control.Failed("reload rejected; still serving the previous configuration:\n%v", err)
		}
		return ReloadResult{Warnings: w}, nil
	case CmdConfigCheck:
		return g.checkRunning(), nil
	case CmdAuditRotate:
		return g.rotateAudit()
	}
	return nil, &control.Error{Code: control.CodeUnknown, Msg: fmt.Sprintf("unknown command %q", cmd)}
}

func decodeArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return &control.Error{Code: control.CodeBadRequest, Msg: "bad arguments: " + err.Error()}
	}
	return nil
}

func (g *Gateway) keyRingOrFail() (report.KeyRing, error) {
	if g.keys == nil {
		return report.KeyRing{}, control.Failed("NTP and NTS-KE are off (port 0, ntsport 0): there is no cookie key ring")
	}
	return g.KeyRing(), nil
}

func (g *Gateway) pruneKeys(args json.RawMessage) (any, error) {
	a := PruneArgs{Keep: 1}
	if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	if g.keys == nil {
		return nil, control.Failed("NTP and NTS-KE are off (port 0, ntsport 0): there is no cookie key ring")
	}
	switch {
	case g.keys.fleet != nil && !a.Fleet:
		return nil, control.Failed("the keys come from the fleet store (ntskeystore): prune with --fleet, which revokes on every gateway")
	case g.keys.fleet == nil && a.Fleet:
		return nil, control.Failed("no ntskeystore: --fleet needs a fleet store")
	case g.keys.fleet != nil:
		ctx, cancel := context.WithTimeout(context.Background(), fleetRotateTimeout)
		defer cancel()
		revoked, err := g.keys.fleet.Prune(ctx, a.Keep)
		if err != nil {
			return nil, control.Failed("%v", err)
		}
		g.log.Warn("fleet keys revoked", zap.Int("revoked", len(revoked)))
		return PruneResult{Dropped: len(revoked)}, nil
	}
	n, err := g.keys.rotator.Prune(a.Keep)
	if err != nil {
		return nil, control.Failed("%v", err)
	}
	return PruneResult{Dropped: n}, nil
}

func (g *Gateway) certCommand(cmd string) (any, error) {
	if g.nts == nil {
		return nil, control.Failed("NTS-KE is off (ntsport 0): no certificate is in use")
	}
	if cmd == CmdCertReload {
		if err := g.nts.reloadCert(); err != nil {
			return nil, control.Failed("certificate refused; still serving the previous one: %v", err)
		}
	}
	c, _ := g.Cert()
	return c, nil
}

// checkRunning re-checks the configuration file the daemon runs from, as the
// daemon reads it (its permissions, its view of the key and certificate
// files). Only that file: checking an arbitrary path with the daemon's
// privileges would let a caller probe files it cannot read.
func (g *Gateway) checkRunning() CheckResult {
	res := CheckResult{File: g.opts.ConfigPath, Problems: []string{}}
	var err error
	if g.opts.ConfigPath == "" {
		res.File = "(embedded defaults)"
		var cfg *config.Config
		if cfg, err = config.Embedded(); err == nil {
			err = CheckConfig(cfg)
		}
	} else {
		res.Warnings, err = CheckWithWarnings(g.opts.ConfigPath)
	}
	res.Problems = append(res.Problems, splitErrors(err)...)
	return res
}

// splitErrors flattens errors.Join trees into one message per problem.
func splitErrors(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// ControlListen opens the control socket the configuration asks for, with
// its policy; nil when `bindcmdaddress /` turned it off.
func (g *Gateway) controlListen(cfg *config.Config) error {
	if cfg.ControlOff {
		g.log.Info("control socket off (bindcmdaddress /): gatectl can only query over NTP")
		return nil
	}
	path := cfg.ControlSocket
	if path == "" {
		path = config.DefaultControlSocket(g.opts.StateDir)
	}
	gid, err := controlGroup(cfg.ControlGroup)
	if err != nil {
		return fmt.Errorf("%w: %s: cmdgroup: %v", config.ErrConfig, cfg.Positions["cmdgroup"], err)
	}
	ln, err := control.Listen(path, gid)
	if err != nil {
		return fmt.Errorf("gateway: %s: bindcmdaddress: %w", cfg.Positions["bindcmdaddress"], err)
	}
	g.ctlLn, g.ctlPath = ln, path
	g.ctlPolicy = control.ProcessPolicy(gid)
	g.log.Info("control socket", zap.String("path", path), zap.Int("group", gid))
	return nil
}

// controlGroup resolves `cmdgroup`; without it the group "timegate" is used
// when it exists, else none (-1).
func controlGroup(name string) (int, error) {
	explicit := name != ""
	if !explicit {
		name = "timegate"
	}
	grp, err := user.LookupGroup(name)
	if err != nil {
		var unknown user.UnknownGroupError
		if !explicit && errors.As(err, &unknown) {
			return -1, nil
		}
		return -1, err
	}
	return strconv.Atoi(grp.Gid)
}

// readOnly are the commands that only look: they are not audit records, so
// that a monitoring script polling `gatectl status` does not flood the trail.
func readOnly(cmd string) bool {
	switch cmd {
	case CmdStatus, CmdSources, CmdServerStats, CmdClients, CmdKeysList, CmdSymList, CmdCertShow, CmdConfigCheck:
		return true
	}
	return false
}

// controlServer is the control socket's server, its commands and refusals on
// the audit trail.
func (g *Gateway) controlServer() *control.Server {
	return &control.Server{
		Handler:   g,
		Authorize: g.ctlPolicy.Authorize,
		Log:       g.log.Named("control"),
		OnCommand: func(who control.Cred, cmd string, err error) {
			if !readOnly(cmd) {
				g.rec.Record(audit.ControlCommand(callerName(who), cmd, err))
			}
		},
		OnRefused: func(who control.Cred, err error) {
			g.rec.Record(audit.ControlRefused(callerName(who), "", err.Error()))
		},
	}
}

// callerName names a control-socket caller for the audit trail: user name
// (when the user database has one), uid and pid.
func callerName(c control.Cred) string {
	if !c.Known {
		return "unknown"
	}
	name := strconv.Itoa(c.UID)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username + "(" + name + ")"
	}
	return name + " pid " + strconv.Itoa(c.PID)
}
