package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"timegate/audit"
	iaudit "timegate/internal/audit"
	"timegate/internal/config"
	"timegate/internal/gateway"
	"timegate/internal/secfile"
)

const auditUsage = `usage: gatectl audit key [-key FILE] [-json]
       gatectl audit verify [-pub FILE] [-live] [-dedup] [-json] FILE...
       gatectl [-socket PATH] audit rotate [-json] [-timeout D]

  key     print the audit log's public key (the line -pub reads), from
          FILE.pub or else from the private key FILE (default: auditkey in
          the state directory, ` + "%s" + `)
  verify  check the FILEs' hash chain and every checkpoint signature; name
          the first bad record (file, line, seq) on any edit, deletion,
          reordering, truncation or forged checkpoint. Several FILEs are one
          chain in the order given: a rotated log's segments oldest first,
          then the live file, as the shell lists them:
            gatectl audit verify /var/lib/timegate/audit.log-* /var/lib/timegate/audit.log
          A missing or misplaced segment is named. A chain that starts with
          an audit.segment record starts at a rotation boundary (the output
          says so): the records before it are in segments not given.
          -pub defaults to the state directory's auditkey.pub. -live accepts
          an unsigned tail and an incomplete last line in the last FILE (a
          file still being written); without it that file must end with a
          checkpoint, as a cleanly stopped gateway leaves it. Every other
          FILE is a sealed segment and must always end with one.
          -dedup verifies a collector's copy: records delivered twice
          (at-least-once shipping) are skipped when identical to the first
          copy, and named when they differ.
  rotate  ask the running daemon (control socket) to seal the live audit
          file now: it is signed, renamed to FILE-NNNNNNNNNNNN (the seq of its
          first record) and a new file starts with an audit.segment record;
          prints the sealed segment, its seq range and the segments that
          retention (auditrotate keep) deleted

Exit status: 0 verified or rotated; 1 verification failed, a file or the
key could not be read, or the daemon could not rotate; 2 usage error (or a
daemon that does not know audit rotate); 4 the control socket cannot be
reached or refused the caller.
`

// runAudit runs an audit subcommand; socket is gatectl's -socket, which
// only rotate uses.
func runAudit(socket string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, auditUsage, config.DefaultStateDir())
		return exitUsage
	}
	switch args[0] {
	case "key":
		return runAuditKey(args[1:], stdout, stderr)
	case "verify":
		return runAuditVerify(args[1:], stdout, stderr)
	case "rotate":
		// A control-socket command like the others (flags, exit codes,
		// the usage list); it is reached from here because "audit" is
		// dispatched before the control commands are looked up.
		for _, c := range ctlCommands() {
			if c.name == "audit rotate" {
				return runCtl(c, socket, args[1:], stdout, stderr)
			}
		}
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(stdout, auditUsage, config.DefaultStateDir())
		return exitOK
	}
	fmt.Fprintf(stderr, "gatectl audit: unknown command %q\n\n"+auditUsage, args[0], config.DefaultStateDir())
	return exitUsage
}

// parseInterleaved parses flags that may come before or after the
// positional arguments (`verify FILE -pub KEY` as well as `verify -pub KEY
// FILE`), and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func defaultKeyPath() string { return filepath.Join(config.DefaultStateDir(), iaudit.KeyFileName) }

func runAuditKey(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gatectl audit key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", defaultKeyPath(), "the audit key `file` (auditkey directive)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil || len(pos) != 0 {
		fmt.Fprintln(stderr, "usage: gatectl audit key [-key FILE] [-json]")
		return exitUsage
	}
	pub, err := readPublicKey(*keyPath)
	if err != nil {
		fmt.Fprintln(stderr, "gatectl audit key:", err)
		return exitFail
	}
	if *asJSON {
		return auditJSON(stdout, map[string]string{"alg": string(pub.Alg), "fingerprint": pub.Fingerprint(), "public_key": pub.Text()[:len(pub.Text())-1]})
	}
	fmt.Fprint(stdout, pub.Text())
	return exitOK
}

// readPublicKey reads KEY.pub, or derives the public key from the private
// key file when the .pub file is missing.
func readPublicKey(keyPath string) (audit.PublicKey, error) {
	if text, err := os.ReadFile(keyPath + ".pub"); err == nil {
		return audit.ParsePublicKey(text)
	}
	data, err := secfile.ReadPrivate(keyPath)
	if err != nil {
		return audit.PublicKey{}, err
	}
	s, err := audit.ParseSigner(data)
	if err != nil {
		return audit.PublicKey{}, err
	}
	return s.Public(), nil
}

// verifyResult is what -json prints.
type verifyResult struct {
	File  string   `json:"file,omitempty"` // when only one was given
	Files []string `json:"files"`
	OK    bool     `json:"ok"`
	// StartsAtSegment: the chain starts with an audit.segment record; the
	// records before first_seq are in segments not given.
	StartsAtSegment bool `json:"starts_at_segment"`
	// HeadPrunedBy: the seq of the audit.segment.prune record that says
	// retention deleted the segment before first_seq (0: none says so).
	HeadPrunedBy   uint64 `json:"head_pruned_by_seq"`
	Records        int    `json:"records"`
	FirstSeq       uint64 `json:"first_seq"`
	LastSeq        uint64 `json:"last_seq"`
	Checkpoints    int    `json:"checkpoints"`
	LastCheckpoint uint64 `json:"last_checkpoint_seq"`
	Unsigned       int    `json:"unsigned_tail"`
	Duplicates     int    `json:"duplicates"`
	KeyFingerprint string `json:"key_fingerprint"`
	BadFile        string `json:"bad_file,omitempty"`
	BadLine        int    `json:"bad_line,omitempty"`
	BadSeq         uint64 `json:"bad_seq,omitempty"`
	Problem        string `json:"problem,omitempty"`
}

const verifyUsage = "usage: gatectl audit verify [-pub FILE] [-live] [-dedup] [-json] FILE..."

func runAuditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gatectl audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pubPath := fs.String("pub", defaultKeyPath()+".pub", "public key `file` (gatectl audit key output)")
	live := fs.Bool("live", false, "accept an unsigned tail and an incomplete last line in the last file (still being written)")
	dedup := fs.Bool("dedup", false, "skip records delivered twice (a collector's copy), if identical to the first copy")
	asJSON := fs.Bool("json", false, "print one JSON object")
	files, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil || len(files) == 0 {
		fmt.Fprintln(stderr, verifyUsage)
		return exitUsage
	}
	text, err := os.ReadFile(*pubPath)
	if err != nil {
		fmt.Fprintf(stderr, "gatectl audit verify: public key: %v (give -pub FILE)\n", err)
		return exitFail
	}
	pub, err := audit.ParsePublicKey(text)
	if err != nil {
		fmt.Fprintf(stderr, "gatectl audit verify: %s: %v\n", *pubPath, err)
		return exitFail
	}
	open := func(name string) (io.ReadCloser, error) { return os.Open(name) }
	sum, err := audit.VerifyFiles(files, open, audit.VerifyOptions{Key: &pub, Live: *live, Dedup: *dedup})
	res := verifyResult{Files: files, OK: err == nil, StartsAtSegment: sum.StartsAtSegment, HeadPrunedBy: sum.HeadPrunedBy, Records: sum.Records,
		FirstSeq: sum.FirstSeq, LastSeq: sum.LastSeq, Checkpoints: sum.Checkpoints, LastCheckpoint: sum.LastCheckpoint,
		Unsigned: sum.Unsigned, Duplicates: sum.Duplicates, KeyFingerprint: pub.Fingerprint()}
	if len(files) == 1 {
		res.File = files[0]
	}
	var p *audit.Problem
	switch {
	case errors.As(err, &p):
		res.BadFile, res.BadLine, res.BadSeq, res.Problem = p.File, p.Line, p.Seq, p.Reason
	case err != nil:
		fmt.Fprintln(stderr, "gatectl audit verify:", err)
		return exitFail
	}
	if *asJSON {
		if auditJSON(stdout, res) != exitOK || !res.OK {
			return exitFail
		}
		return exitOK
	}
	if !res.OK {
		at := *p
		at.File = "" // said first, as for a good file
		fmt.Fprintf(stdout, "%s: BAD: first bad record at %v\n", p.File, &at)
		return exitFail
	}
	what := files[0]
	if len(files) > 1 {
		what = fmt.Sprintf("%s .. %s (%d files)", files[0], files[len(files)-1], len(files))
	}
	fmt.Fprintf(stdout, "%s: OK: %d records, seq %d..%d, %d checkpoints signed by %s %s (last at seq %d), %d records after it",
		what, res.Records, res.FirstSeq, res.LastSeq, res.Checkpoints, pub.Alg, res.KeyFingerprint, res.LastCheckpoint, res.Unsigned)
	if *dedup {
		fmt.Fprintf(stdout, ", %d duplicates skipped", res.Duplicates)
	}
	switch {
	case res.StartsAtSegment && res.HeadPrunedBy != 0:
		fmt.Fprintf(stdout, "; starts at a rotation boundary: retention deleted the records before seq %d (audit.segment.prune at seq %d)", res.FirstSeq, res.HeadPrunedBy)
	case res.StartsAtSegment:
		fmt.Fprintf(stdout, "; starts at a rotation boundary: the records before seq %d are in earlier segments, not given, "+
			"and no audit.segment.prune record in these files says retention deleted them: if these are all the files, they were deleted some other way", res.FirstSeq)
	}
	fmt.Fprintln(stdout)
	return exitOK
}

func callAuditRotate(c *ctlClient, _ []string, _ any, out io.Writer) int {
	var res gateway.AuditRotateResult
	if code := c.do(gateway.CmdAuditRotate, nil, &res); code != exitOK {
		return code
	}
	return c.emit(out, res, func() {
		printf(out, "sealed %s: seq %d..%d, closed by a signed checkpoint\n", res.Segment, res.First, res.Last)
		for _, s := range res.Pruned {
			printf(out, "pruned %s (retention: auditrotate keep)\n", s)
		}
	})
}

func auditJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFail
	}
	return exitOK
}
