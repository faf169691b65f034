package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"timegate/internal/config"
	"timegate/internal/control"
)

// exitNoDaemon: the control socket could not be reached, or refused us.
// Scripts tell "timegate is down or I may not ask" from "the answer is bad".
const exitNoDaemon = 4

// ctlCommand is one control-socket command of gatectl: its flags, the
// protocol command it sends, and how it prints the answer.
type ctlCommand struct {
	name  string // as typed: "keys nts rotate"
	usage string // arguments after the flags
	short string // one line for gatectl's usage text
	help  string
	// flags adds command-specific flags; nil for none.
	flags func(fs *flag.FlagSet) func() (args any, err error)
	// nargs is the number of positional arguments (after flags).
	nargs int
	// call sends the request and prints; it returns the exit code.
	call func(c *ctlClient, pos []string, args any, out io.Writer) int
}

// ctlClient carries what every control command needs.
type ctlClient struct {
	socket  string
	json    bool
	timeout time.Duration
	stderr  io.Writer
	// root: gatectl may edit the daemon's files itself when the daemon,
	// unprivileged, may not (control.CodeNoWrite).
	root bool
}

// do calls cmd and decodes the answer into out; on failure it prints the
// error and returns the exit code to use.
func (c *ctlClient) do(cmd string, args, out any) int {
	return c.exit(c.call(cmd, args, out))
}

func (c *ctlClient) call(cmd string, args, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	return control.Call(ctx, c.socket, cmd, args, out)
}

// exit prints err, if any, and returns the exit code for it.
func (c *ctlClient) exit(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(c.stderr, "gatectl:", err)
	var ce *control.Error
	if errors.As(err, &ce) {
		switch ce.Code {
		case control.CodeRefused, control.CodeBusy:
			return exitNoDaemon
		case control.CodeUnknown, control.CodeVersion, control.CodeBadRequest:
			return exitUsage
		}
		return exitFail
	}
	return exitNoDaemon
}

// emit prints v as JSON, or calls human.
func (c *ctlClient) emit(out io.Writer, v any, human func()) int {
	if c.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			fmt.Fprintln(c.stderr, "gatectl:", err)
			return exitFail
		}
		return exitOK
	}
	human()
	return exitOK
}

// runCtl parses a control command's flags and runs it.
func runCtl(cmd ctlCommand, global string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gatectl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &ctlClient{stderr: stderr, root: os.Geteuid() == 0}
	fs.StringVar(&c.socket, "socket", global, "control socket `path` (default: "+defaultSocketHelp()+")")
	fs.BoolVar(&c.json, "json", false, "print JSON instead of a table")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "give up after `duration`")
	var build func() (any, error)
	if cmd.flags != nil {
		build = cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gatectl %s [flags] %s\n\n%s\n\nFlags:\n", cmd.name, cmd.usage, cmd.help)
		fs.PrintDefaults()
	}
	// Flags may follow the arguments too (`keys sym remove 8 -json`).
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != cmd.nargs {
		fmt.Fprintf(stderr, "gatectl %s: want %d argument(s), got %d\n", cmd.name, cmd.nargs, len(pos))
		fs.Usage()
		return exitUsage
	}
	var reqArgs any
	if build != nil {
		var err error
		if reqArgs, err = build(); err != nil {
			fmt.Fprintf(stderr, "gatectl %s: %v\n", cmd.name, err)
			return exitUsage
		}
	}
	if c.socket == "" {
		c.socket = defaultSocket()
	}
	return cmd.call(c, pos, reqArgs, stdout)
}

// defaultSocket finds the control socket when -socket is not given: the
// TIMEGATE_SOCKET environment variable, else the first of the daemon's
// default places that exists (the system daemon's, then this user's).
func defaultSocket() string {
	if p := os.Getenv("TIMEGATE_SOCKET"); p != "" {
		return p
	}
	cands := socketCandidates()
	for _, p := range cands {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return cands[0]
}

func socketCandidates() []string {
	return []string{
		filepath.Join("/run/timegate", config.ControlSocketName),
		filepath.Join(config.DefaultStateDir(), config.ControlSocketName),
	}
}

func defaultSocketHelp() string {
	return "$TIMEGATE_SOCKET, else the first that exists of " + socketCandidates()[0] + ", " + socketCandidates()[1]
}
