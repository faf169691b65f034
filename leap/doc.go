// Package leap is timegate's pure leap-second core: it reads leap-second
// tables (the IERS/NIST leap-seconds.list file, and the TZif files of a
// right/ time zone such as right/UTC), decides which leap is due at the end
// of the current UTC day from a table and the leap indicator the upstream
// majority voted (RFC 5905 §7.3), and describes how served time takes up a
// leap second: stepped, slewed, or smoothed out as chrony's `smoothtime …
// leaponly` does.
//
// It does no I/O: callers read the files and pass the bytes and the time.
package leap
