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
	"timegate/internal/secfile"
)

const auditUsage = `usage: gatectl audit key [-key FILE] [-json]
       gatectl audit verify [-pub FILE] [-live] [-dedup] [-json] FILE

  key     print the audit log's public key (the line -pub reads), from
          FILE.pub or else from the private key FILE (default: auditkey in
          the state directory, ` + "%s" + `)
  verify  check FILE's hash chain and every checkpoint signature; name the
          first bad record on any edit, deletion, reordering, truncation
          or forged checkpoint. -pub defaults to the state directory's
          auditkey.pub. -live accepts an unsigned tail and an incomplete last
          line (a file still being written); without it the file must end
          with a checkpoint, as a cleanly stopped gateway leaves it.
          -dedup verifies a collector's copy: records delivered twice
          (at-least-once shipping) are skipped when identical to the first
          copy, and named when they differ.

Exit status: 0 verified, 1 verification failed or the file or key could
not be read, 2 usage error.
`

func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, auditUsage, config.DefaultStateDir())
		return exitUsage
	}
	switch args[0] {
	case "key":
		return runAuditKey(args[1:], stdout, stderr)
	case "verify":
		return runAuditVerify(args[1:], stdout, stderr)
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
	File           string `json:"file"`
	OK             bool   `json:"ok"`
	Records        int    `json:"records"`
	FirstSeq       uint64 `json:"first_seq"`
	LastSeq        uint64 `json:"last_seq"`
	Checkpoints    int    `json:"checkpoints"`
	LastCheckpoint uint64 `json:"last_checkpoint_seq"`
	Unsigned       int    `json:"unsigned_tail"`
	Duplicates     int    `json:"duplicates"`
	KeyFingerprint string `json:"key_fingerprint"`
	BadLine        int    `json:"bad_line,omitempty"`
	BadSeq         uint64 `json:"bad_seq,omitempty"`
	Problem        string `json:"problem,omitempty"`
}

func runAuditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gatectl audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pubPath := fs.String("pub", defaultKeyPath()+".pub", "public key `file` (gatectl audit key output)")
	live := fs.Bool("live", false, "accept an unsigned tail and an incomplete last line (file still being written)")
	dedup := fs.Bool("dedup", false, "skip records delivered twice (a collector's copy), if identical to the first copy")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: gatectl audit verify [-pub FILE] [-live] [-dedup] [-json] FILE")
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
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "gatectl audit verify:", err)
		return exitFail
	}
	defer f.Close()
	sum, err := audit.Verify(f, audit.VerifyOptions{Key: &pub, Live: *live, Dedup: *dedup})
	res := verifyResult{File: pos[0], OK: err == nil, Records: sum.Records, FirstSeq: sum.FirstSeq, LastSeq: sum.LastSeq,
		Checkpoints: sum.Checkpoints, LastCheckpoint: sum.LastCheckpoint, Unsigned: sum.Unsigned, Duplicates: sum.Duplicates,
		KeyFingerprint: pub.Fingerprint()}
	var p *audit.Problem
	switch {
	case errors.As(err, &p):
		res.BadLine, res.BadSeq, res.Problem = p.Line, p.Seq, p.Reason
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
		fmt.Fprintf(stdout, "%s: BAD: first bad record at %v\n", pos[0], p)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: OK: %d records, seq %d..%d, %d checkpoints signed by %s %s (last at seq %d), %d records after it",
		pos[0], res.Records, res.FirstSeq, res.LastSeq, res.Checkpoints, pub.Alg, res.KeyFingerprint, res.LastCheckpoint, res.Unsigned)
	if *dedup {
		fmt.Fprintf(stdout, ", %d duplicates skipped", res.Duplicates)
	}
	fmt.Fprintln(stdout)
	return exitOK
}

func auditJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFail
	}
	return exitOK
}
