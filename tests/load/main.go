package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Limits that keep a run bounded whatever the flags say.
const (
	// maxDuration bounds one run: a forgotten load generator must stop.
	maxDuration = 10 * time.Minute
	// maxConns bounds the sockets (and goroutine pairs) of plain mode.
	maxConns = 64
	// maxRate bounds the requested rate (requests/s); 0 means "as fast as
	// the sender goes", which on loopback is below this anyway.
	maxRate = 5_000_000
	// maxRounds bounds how often spoof mode walks its sources.
	maxRounds = 100
	// maxGrace bounds the wait for late replies after the last request.
	maxGrace = 10 * time.Second
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Config is a parsed command line.
type Config struct {
	Mode     string
	Target   string
	Rate     float64
	Duration time.Duration
	Conns    int
	Sources  int
	Rounds   int
	JSON     bool
	PID      int
	Every    time.Duration
	Grace    time.Duration
	Ring     int
	Quiet    bool
	JSONOut  string
	KE       string // nts: NTS-KE server address
	CA       string // nts: certificate file to trust
	// XLeave: plain requests that an interleaved-mode server must keep
	// (origin ending in 1, distinct receive and transmit timestamps).
	XLeave bool
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var res *Result
	switch cfg.Mode {
	case "echo":
		if err := runEcho(ctx, cfg, stderr); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case "plain", "nts":
		res, err = runPlain(ctx, cfg, stderr)
	case "ke":
		res, err = runKE(ctx, cfg, stderr)
	case "spoof":
		res, err = runSpoof(ctx, cfg, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.JSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err == nil && cfg.JSONOut != "" {
		err = writeJSONFile(cfg.JSONOut, res)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `load: NTP load generator for loopback and 198.18.0.0/15 targets (timegate tests/load)

  load -mode plain -target 127.0.0.1:PORT [-rate R] [-duration D] [-conns N] [-json]
  load -mode spoof -target 127.0.0.1:PORT -sources N [-rate R] [-duration D] [-json]   (root)
  load -mode nts -target 127.0.0.1:PORT -ke 127.0.0.1:KEPORT -ca CERT.pem [flags as plain]
  load -mode ke -ke 127.0.0.1:KEPORT -ca CERT.pem [-conns N] [-rate R] [-duration D]
  load -mode echo -target 127.0.0.1:PORT [-duration D]

plain: N UDP sockets send mode-3 NTPv4 requests with random transmit nonces and
count replies whose origin matches a request in flight. spoof: a raw socket
sends requests whose IPv4 source walks N distinct addresses of 127.0.0.0/8.
nts: as plain, with NTS requests (one NTS-KE, then one request built ahead
per ring slot). ke: N clients run NTS-KE sessions back to back. echo: serve, for -duration, the bare batched UDP answer
(mode 4, nonce echoed) that measures the ceiling of any server on this path.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Mode, "mode", "plain", "`plain`, nts, ke, spoof or echo")
	fs.StringVar(&c.KE, "ke", "", "nts: NTS-KE server `address:port`")
	fs.StringVar(&c.CA, "ca", "", "nts: the server's certificate (or its CA) as PEM `file`")
	fs.StringVar(&c.Target, "target", "127.0.0.1:1123", "server `address:port` (loopback or 198.18.0.0/15 only)")
	fs.Float64Var(&c.Rate, "rate", 0, "total request `rate` per second; 0 = as fast as possible")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send (spoof: at most this long)")
	fs.IntVar(&c.Conns, "conns", 4, "plain: number of UDP sockets")
	fs.IntVar(&c.Sources, "sources", 100_000, fmt.Sprintf("spoof: distinct source addresses, 1..%d", MaxSources))
	fs.IntVar(&c.Rounds, "rounds", 1, "spoof: requests per source (walks of the sources)")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object instead of text")
	fs.IntVar(&c.PID, "pid", 0, "sample this `process`'s VmRSS/VmHWM and its socket drops (0 = none)")
	fs.DurationVar(&c.Every, "every", 10*time.Second, "progress and memory sampling interval")
	fs.DurationVar(&c.Grace, "grace", 500*time.Millisecond, "wait for late replies after the last request")
	fs.IntVar(&c.Ring, "ring", 1<<16, "nonce ring slots per socket (power of two)")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&c.JSONOut, "json-out", "", "also write the JSON object to `file`")
	fs.BoolVar(&c.XLeave, "xleave", false, "plain: requests shaped like an interleaved client's (origin ending in 1, receive set), never matching a kept reply: what costs an interleaved-mode server most")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() != 0 {
		return c, fmt.Errorf("load: unexpected arguments %q", fs.Args())
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("load: "+format, a...)) }
	switch c.Mode {
	case "plain", "spoof", "echo":
	case "nts", "ke":
		if c.KE == "" || c.CA == "" {
			bad("-mode %s needs -ke and -ca", c.Mode)
		} else if _, err := loopbackTarget(c.KE); err != nil {
			errs = append(errs, fmt.Errorf("-ke: %w", err))
		}
		if c.Ring > maxNTSRing {
			bad("-mode nts: -ring must be at most %d (a request is built per slot)", maxNTSRing)
		}
	default:
		bad("-mode must be plain, nts, ke, spoof or echo, got %q", c.Mode)
	}
	if _, err := loopbackTarget(c.Target); err != nil {
		errs = append(errs, err)
	}
	if c.Rate < 0 || c.Rate > maxRate {
		bad("-rate must be 0..%d, got %v", maxRate, c.Rate)
	}
	if c.Duration <= 0 || c.Duration > maxDuration {
		bad("-duration must be in (0, %v], got %v", maxDuration, c.Duration)
	}
	if c.Conns < 1 || c.Conns > maxConns {
		bad("-conns must be 1..%d, got %d", maxConns, c.Conns)
	}
	if c.Sources < 1 || c.Sources > MaxSources {
		bad("-sources must be 1..%d, got %d", MaxSources, c.Sources)
	}
	if c.Rounds < 1 || c.Rounds > maxRounds {
		bad("-rounds must be 1..%d, got %d", maxRounds, c.Rounds)
	}
	if c.Every <= 0 {
		bad("-every must be positive, got %v", c.Every)
	}
	if c.Grace < 0 || c.Grace > maxGrace {
		bad("-grace must be 0..%v, got %v", maxGrace, c.Grace)
	}
	if err := checkRingSize(c.Ring); err != nil {
		errs = append(errs, err)
	}
	if c.PID < 0 {
		bad("-pid must not be negative")
	}
	return errors.Join(errs...)
}

func writeJSONFile(path string, r *Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("load: %s: %w", path, err)
	}
	return f.Close()
}
