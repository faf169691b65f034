// Command timegate is the NTS-enabled time gateway daemon.
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

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/internal/gateway"
	"timegate/internal/keproc"
	"timegate/internal/logging"
	"timegate/internal/sdnotify"
)

func main() {
	if keproc.IsHelper() {
		os.Exit(keproc.HelperMain())
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("timegate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	confPath := fs.String("config", "", "configuration `file` (default: the embedded defaults)")
	check := fs.String("check-config", "", "validate configuration `file` and exit")
	stateDir := fs.String("state", "", "state `directory` (default: "+config.DefaultStateDir()+")")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of console text")
	printDefaults := fs.Bool("print-defaults", false, "print the embedded default configuration and exit")
	showVersion := fs.Bool("version", false, "print the version (module, VCS revision, Go) and exit")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	switch {
	case *showVersion:
		fmt.Println(versionString())
		return 0
	case *printDefaults:
		os.Stdout.Write(config.EmbeddedText())
		return 0
	case *check != "":
		warnings, err := gateway.CheckWithWarnings(*check)
		for _, w := range warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stderr, "%s: OK\n", *check)
		return 0
	}
	log, err := logging.New(*logLevel, *logJSON, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer log.Sync()
	cfg, err := loadConfig(*confPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *stateDir == "" {
		*stateDir = config.DefaultStateDir()
	}
	source := *confPath
	if source == "" {
		source = "embedded defaults (timegate -print-defaults)"
	}
	log.Info("timegate starting", zap.String("version", gateway.Version()), zap.String("config", source), zap.String("state_dir", *stateDir))
	// Signals are caught before the slow part of start-up: a SIGHUP sent as
	// soon as the ports are bound must reload, not kill the daemon.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	g, err := gateway.New(cfg, gateway.Options{ConfigPath: *confPath, StateDir: *stateDir, Log: log,
		LogLevel: *logLevel, LogJSON: *logJSON})
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	// The PID file is written as root, where root wants it (chronyd does the
	// same); after the drop a clean exit may not be able to remove it, and a
	// stale one is recognised as such at the next start.
	removePID, err := writePID(cfg)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	defer removePID()
	if err := g.DropPrivileges(); err != nil {
		log.Error("cannot drop privileges", zap.Error(err))
		return 1
	}
	go handleSignals(g, sigs, log)
	// Every socket is bound (New) and the privileges are gone: clients that
	// systemd starts after us find the service up.
	notify(log, sdnotify.Ready)
	context.AfterFunc(ctx, func() { notify(log, sdnotify.Stopping) })
	if err := g.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped", zap.Error(err))
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}
