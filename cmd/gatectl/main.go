// Command gatectl is timegate's operator tool: one-shot NTP and NTS
// queries, configuration checks and (through the control socket) status
// and key rotation.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"timegate/internal/gateway"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Exit codes.
const (
	exitOK      = 0
	exitFail    = 1 // the query or check failed
	exitUsage   = 2
	exitUnsound = 3 // the server answered, but with a kiss or unsynchronised time
)

const usageHead = `usage: gatectl [-socket PATH] COMMAND [flags] [args]

One-shot NTP and NTS queries (no daemon needed):
  query [-port P] [-json] [-timeout D] [-version N] HOST
        one NTP exchange with HOST; prints offset, delay, stratum, refid,
        leap and root distance (-json: one JSON object)
  query -nts [-ca FILE] [-aead LIST] [-port P] [-json] [-timeout D] HOST[:KEPORT]
        NTS-KE with HOST over TLS 1.3 (port 4460 by default; trusting the
        system roots, or only FILE), then one NTS-authenticated NTP exchange
        with the server and port it negotiated (-port, if given, overrides
        the port); adds the AEAD, cookie counts and KE time to the output.
        -aead offers AEAD 30 (AES-128-GCM-SIV) and 15 (AES-SIV-CMAC-256);
        default 30,15
        -timeout bounds each of the two exchanges
  config check FILE
        validate a timegate configuration file as this user reads it;
        non-zero exit on any error
  audit key [-key FILE] [-json]
        print the audit log's public key (ML-DSA-65 or Ed25519)
  audit verify [-pub FILE] [-live] [-dedup] [-json] FILE...
        verify an audit log's hash chain and signed checkpoints, several
        files (a rotated log's segments, oldest first, then the live file)
        as one chain; names the first bad record's file and line (exit 1)

Through the running daemon's control socket (-socket PATH, default
$TIMEGATE_SOCKET, else /run/timegate/timegate.sock, else the state
directory's timegate.sock); each takes -json, -timeout D and -h:
`

const usageTail = `  config check
        the daemon re-checks the configuration file it runs from, as it reads it
  version
        this gatectl's version
  help  this text

Exit status: 0 ok, 1 failure, 2 usage error, 3 the server answered with a
Kiss-o'-Death or says it is unsynchronised (status: serving leap 3),
4 the control socket cannot be reached or refused the caller.
`

func usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range ctlCommands() {
		name := c.name
		if c.usage != "" {
			name += " " + c.usage
		}
		fmt.Fprintf(&b, "  %s\n        %s\n", name, c.short)
	}
	b.WriteString(usageTail)
	return b.String()
}

func run(args []string, stdout, stderr io.Writer) int {
	socket := ""
	if len(args) >= 2 && (args[0] == "-socket" || args[0] == "--socket") {
		socket, args = args[1], args[2:]
	} else if len(args) >= 1 {
		if v, ok := strings.CutPrefix(args[0], "-socket="); ok {
			socket, args = v, args[1:]
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	switch args[0] {
	case "query":
		return runQuery(args[1:], stdout, stderr)
	case "config":
		return runConfig(socket, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "gatectl %s\n", gateway.Version())
		return exitOK
	case "audit":
		return runAudit(socket, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage())
		return exitOK
	}
	for _, c := range ctlCommands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return runCtl(c, socket, args[len(words):], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "gatectl: unknown command %q\n\n%s", strings.Join(args, " "), usage())
	return exitUsage
}
