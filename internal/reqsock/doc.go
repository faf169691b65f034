// Package reqsock holds the upstream client's request sockets on Linux:
// one connected UDP socket per request (a new source port each time, RFC
// 9109 §3), made, written and read with raw system calls and watched by
// an epoll instance of its own rather than by Go's runtime poller.
//
// Why: the time between a request leaving and the upstream's reply is
// what the sample's delay is made of, and on a machine where the upstream
// runs too (the accuracy harness, a test bed) every thread the gateway
// wakes in that time competes with the upstream for a CPU. Through the
// net package a poll woke four or five: a goroutine per timer expiry, the
// request's own goroutine, a spinning scheduler thread for each, and
// sysmon, which the runtime wakes on entering a system call after a quiet
// spell. chronyd sends and sleeps. With this package the engine's loop
// sends from its own goroutine and goes back to sleep; only the reply
// wakes anything (BENCHMARKS.md, "One wake per poll").
//
// The set's sockets are out of Go's poller, so the runtime cannot close
// one under us or hand its number to another file while we use it: the
// owner (one goroutine) opens, reads and closes them all. Elsewhere
// New fails and the engine uses its portable path through net.
package reqsock
