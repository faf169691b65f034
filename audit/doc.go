// Package audit is the pure core of timegate's audit trail: the record
// schema, its canonical JSON-line encoding, the SHA-256 hash chain, signed
// checkpoints (ML-DSA-65, FIPS 204, by default; Ed25519 as an option), the
// verifier that names the first bad record of a file, and the RFC 5424
// message a shipper sends. It does no I/O beyond reading an io.Reader it is
// handed, takes time as an argument and never logs; files, sockets and
// goroutines live in internal/audit.
//
// # Record
//
// One record is one line of JSON, fields always in this order:
//
//	{"v":1,"seq":42,"time":"2026-12-04T14:00:00.123456789Z",
//	 "type":"config.reload","outcome":"rejected",
//	 "subject":{"prefix":"192.0.2.0/24","source":"...","key_id":"...","user":"..."},
//	 "details":{"error":"..."},
//	 "prev":"<hex SHA-256 of the previous line>",
//	 "sig":"<base64 signature, checkpoints only>"}
//
// subject, details and sig are left out when empty; subject's members too.
// The line is the canonical encoding of the record: a parser accepts a line
// only when encoding what it parsed gives back the very same bytes, so two
// spellings of one record cannot exist and whitespace or key-order edits are
// as visible as value edits.
//
// prev is the SHA-256 of the previous line's bytes (without the newline);
// the first record of a log has seq 1 and prev all zeros. After a rotation
// (segment.go) the chain runs on into the next file, which starts with an
// audit.segment record whose prev is the hash of the sealed segment's last
// line; the verifier checks such a set of files as one chain. A checkpoint
// (type audit.checkpoint) is a record like the others whose sig signs its own
// encoding without sig; since its prev commits to every earlier line, one
// signature covers the whole file up to it.
package audit
