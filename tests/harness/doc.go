// Package harness runs the real peers of timegate's integration tests — chronyd,
// chronyc, and the timegate and gatectl executables — on loopback, and reads their
// state back in typed form.
//
// Every helper takes a testing.TB and cleans up after itself through t.Cleanup:
// daemons are stopped with SIGTERM, must exit with status 0, are reaped, and their
// logs are written to the test log when the test failed. The package keeps no
// package-level mutable state; the one thing shared between tests, the built
// timegate executables, lives in a Build value that a TestMain owns.
//
// # Missing peers
//
// A test whose peer is missing fails under CI=true and is skipped elsewhere, with a
// message that names the Debian package to install (see RequireBinary).
//
// # chronyd, safely
//
// chronyd always runs with -x (no clock control), in the foreground (-d), with its
// own configuration, pidfile, command socket, dump directories and unprivileged
// ports in a fresh directory under /tmp (short enough for a Unix socket path, and
// not under /root). It is started through
//
//	setpriv --bounding-set -sys_time --inh-caps -sys_time
//
// when setpriv exists, so it never holds CAP_SYS_TIME, and with -u root: chrony
// 4.3 refuses to start as a non-root user ("Fatal error : Not superuser"), and
// keeping it root spares the tests from making every key, certificate and
// directory readable by the _chrony user. Only loopback traffic is ever configured.
//
// A falseticker, or an upstream with a known shift, is two chained chronyds
// (ChronyOptions.Shift): an honest reference on 127.0.0.2 and a client of it with
// chrony's `offset`, which chronyd -x applies to every timestamp it serves. Not
// libfaketime: it shifts what chronyd reads with clock_gettime but not the kernel's
// receive timestamps, so such a server looks half as far off with a negative delay.
//
// # chronyc output
//
// Reports are read with chronyc -c (CSV, no DNS lookups) and parsed by the
// Parse* functions, whose doc comments record the field layouts of chrony 4.3.
package harness
