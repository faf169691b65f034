// Command gatectl is timegate's operator tool: one-shot NTP and NTS
// queries, configuration checks and (through the control socket) status
// and key rotation.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Exit codes.
const (
	exitOK      = 0
	exitFail    = 1 // the query or check failed
	exitUsage   = 2
	exitUnsound = 3 // the server answered, but with a kiss or unsynchronised time
)

const usage = `usage: gatectl COMMAND [flags] [args]

Commands:
  query [-port P] [-json] [-timeout D] [-version N] HOST
        one NTP exchange with HOST; prints offset, delay, stratum, refid,
        leap and root distance (-json: one JSON object)
  query -nts [-ca FILE] [-port P] [-json] [-timeout D] HOST[:KEPORT]
        NTS-KE with HOST over TLS 1.3 (port 4460 by default; trusting the
        system roots, or only FILE), then one NTS-authenticated NTP exchange
        with the server and port it negotiated (-port, if given, overrides
        the port); adds the AEAD, cookie counts and KE time to the output.
        -timeout bounds each of the two exchanges
  config check FILE
        validate a timegate configuration file; non-zero exit on any error
  audit key [-key FILE] [-json]
        print the audit log's public key (ML-DSA-65 or Ed25519)
  audit verify [-pub FILE] [-live] [-dedup] [-json] FILE
        verify an audit log's hash chain and signed checkpoints; names the
        first bad record (exit 1)
  help  this text

Exit status: 0 ok, 1 failure, 2 usage error, 3 the server answered with a
Kiss-o'-Death or says it is unsynchronised.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "query":
		return runQuery(args[1:], stdout, stderr)
	case "config":
		return runConfig(args[1:], stdout, stderr)
	case "audit":
		return runAudit(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "gatectl: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
