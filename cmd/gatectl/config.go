package main

import (
	"fmt"
	"io"

	"timegate/internal/gateway"
)

// runConfig is `config check FILE` (checked here, as this user reads the
// file) or `config check` (the daemon checks the file it runs from).
func runConfig(socket string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, "usage: gatectl config check [FILE]\n")
		return exitUsage
	}
	rest := args[1:]
	if len(rest) == 1 && rest[0] != "-h" && rest[0] != "-help" && rest[0] != "--help" && rest[0][0] != '-' {
		// Warnings, errors and the verdict all go to stderr, as
		// `timegate -check-config` prints them.
		warnings, err := gateway.CheckWithWarnings(rest[0])
		for _, w := range warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		fmt.Fprintf(stderr, "%s: OK\n", rest[0])
		return exitOK
	}
	cmd := ctlCommand{name: "config check", usage: "[FILE]", help: "Without FILE, the daemon re-checks the configuration file it runs from, as it\nreads it; with FILE, gatectl checks FILE itself (no daemon needed).",
		call: func(c *ctlClient, _ []string, _ any, out io.Writer) int { return runningCheck(c, out) }}
	return runCtl(cmd, socket, rest, stdout, stderr)
}
