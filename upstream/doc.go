// Package upstream holds the pure clock algorithms of the gateway's client side: the RFC 5905
// clock filter (§10), selection of truechimers by the intersection algorithm (§11.2.1),
// clustering and combining (§11.2.2, §11.2.3), and the software clock that turns the combined
// estimate into the time the gateway serves.
//
// Nothing here opens a socket, reads the clock, sleeps or logs: every function takes the
// current time as an argument, so a whole network of slow, lying or dying upstreams can be
// simulated in a unit test with a fake clock (see the simtest package). The per-source poll
// state machine sits on top of Filter: it turns each valid response into a Sample, calls
// Filter.Add, and calls Filter.Timeout when three polls in a row went unanswered.
//
// # Units
//
// Offsets, delays, dispersions and jitters are time.Duration (nanoseconds): the type says
// what the number is, and a nanosecond is finer than the NTP short format (15 µs) that root
// delay and dispersion travel in. The statistics themselves (RMS, weighted means, regression)
// are computed in float64 seconds, as in the RFC 5905 reference code, and converted back.
// Frequencies (PHI, slew rates, frequency corrections) are dimensionless float64 (s/s);
// 1e-6 is one ppm.
//
// # Timescales
//
// Three readings of "now" appear below:
//
//   - system time: what time.Now returns on the gateway;
//   - local time: the timescale samples are measured in. It is the system time with every
//     correction timegate itself made to the system clock taken out again (SoftClock.Local).
//     Without a Discipliner, timegate never touches the system clock and local time is
//     system time. With one, measuring in local time keeps every stored sample consistent
//     across corrections, the way chrony corrects its stored samples when it slews;
//   - served time: what the gateway puts in its replies (SoftClock.Now).
//
// A sample's offset is "true time minus local time", so T1 and T4 of every exchange must be
// read as SoftClock.Local(time.Now()).
package upstream
