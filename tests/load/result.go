package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Counters are one worker's running totals; progress reads them while the
// workers write.
type Counters struct {
	Sent       atomic.Uint64
	Replies    atomic.Uint64 // mode-4 replies matching a request in flight
	KoD        atomic.Uint64 // Kiss-o'-Death replies matching a request in flight
	Unmatched  atomic.Uint64 // well-formed replies matching nothing (late, duplicate, foreign)
	Bad        atomic.Uint64 // datagrams that are not NTP server replies
	SendErrors atomic.Uint64
}

func sum(cs []*Counters, f func(*Counters) *atomic.Uint64) uint64 {
	var n uint64
	for _, c := range cs {
		n += f(c).Load()
	}
	return n
}

// Sample is one progress point.
type Sample struct {
	T       float64 `json:"t_s"`
	Sent    uint64  `json:"sent"`
	Replies uint64  `json:"replies"`
	*Memory `json:",omitempty"`
}

// Result is what a run prints.
type Result struct {
	Mode       string  `json:"mode"`
	Target     string  `json:"target"`
	Conns      int     `json:"conns,omitempty"`
	Sources    int     `json:"sources,omitempty"`
	Rounds     int     `json:"rounds,omitempty"`
	RateTarget float64 `json:"rate_target"` // 0 = as fast as possible
	Seconds    float64 `json:"seconds"`     // time spent sending
	// ReplySeconds is the time from the first request to the last reply:
	// a saturated server keeps answering its queue after the sender stops,
	// so its rate is replies over this span, not over Seconds.
	ReplySeconds float64 `json:"reply_seconds"`

	Sent       uint64 `json:"sent"`
	Replies    uint64 `json:"replies"`
	KoD        uint64 `json:"kod"`
	Unmatched  uint64 `json:"unmatched"`
	Bad        uint64 `json:"bad"`
	SendErrors uint64 `json:"send_errors"`

	SentPerSec    float64 `json:"sent_per_s"`    // Sent / Seconds
	RepliesPerSec float64 `json:"replies_per_s"` // Replies / ReplySeconds
	LossPct       float64 `json:"loss_pct"`      // requests with neither reply nor KoD
	AnsweredPct   float64 `json:"answered_pct"`  // requests with a (non-KoD) reply

	P50us float64 `json:"latency_p50_us"`
	P90us float64 `json:"latency_p90_us"`
	P99us float64 `json:"latency_p99_us"`
	MaxUs float64 `json:"latency_max_us"`

	// The server's residence (receive to transmit timestamp, its own
	// clock; see Residence), when its replies carry both timestamps.
	ResidenceP50us *float64 `json:"residence_p50_us,omitempty"`
	ResidenceP99us *float64 `json:"residence_p99_us,omitempty"`

	// TargetDrops is the growth of the kernel's drop counter of the
	// target's UDP socket(s) during the run (receive buffer full), when
	// -pid is given and the socket is in this network namespace.
	TargetDrops *uint64 `json:"target_socket_drops,omitempty"`
	// OwnDrops counts replies the kernel dropped on the tool's own sockets:
	// loss that is the load generator's, not the server's.
	OwnDrops uint64 `json:"own_socket_drops"`

	// FirstError is the first failure's message (-mode ke).
	FirstError string `json:"first_error,omitempty"`

	Samples []Sample `json:"samples,omitempty"`
}

// finish fills the derived figures from the counters, the latencies, the
// time spent sending and the time of the last reply.
func (r *Result) finish(cs []*Counters, h *Histogram, sending, lastReply time.Duration) {
	r.Seconds = sending.Seconds()
	r.ReplySeconds = lastReply.Seconds()
	r.Sent = sum(cs, func(c *Counters) *atomic.Uint64 { return &c.Sent })
	r.Replies = sum(cs, func(c *Counters) *atomic.Uint64 { return &c.Replies })
	r.KoD = sum(cs, func(c *Counters) *atomic.Uint64 { return &c.KoD })
	r.Unmatched = sum(cs, func(c *Counters) *atomic.Uint64 { return &c.Unmatched })
	r.Bad = sum(cs, func(c *Counters) *atomic.Uint64 { return &c.Bad })
	r.SendErrors = sum(cs, func(c *Counters) *atomic.Uint64 { return &c.SendErrors })
	if r.Seconds > 0 {
		r.SentPerSec = float64(r.Sent) / r.Seconds
	}
	if r.ReplySeconds > 0 {
		r.RepliesPerSec = float64(r.Replies) / r.ReplySeconds
	}
	if r.Sent > 0 {
		answered := min(r.Replies+r.KoD, r.Sent)
		r.LossPct = 100 * float64(r.Sent-answered) / float64(r.Sent)
		r.AnsweredPct = 100 * float64(r.Replies) / float64(r.Sent)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	r.P50us, r.P90us, r.P99us = us(h.Percentile(50)), us(h.Percentile(90)), us(h.Percentile(99))
	r.MaxUs = us(h.Max())
}

// residence fills the residence percentiles from h, if it has samples.
func (r *Result) residence(h *Histogram) {
	if h.Count() == 0 {
		return
	}
	p50 := float64(h.Percentile(50)) / float64(time.Microsecond)
	p99 := float64(h.Percentile(99)) / float64(time.Microsecond)
	r.ResidenceP50us, r.ResidenceP99us = &p50, &p99
}

// WriteJSON prints r as one JSON object and a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// WriteText prints r for a human.
func (r *Result) WriteText(w io.Writer) error {
	rate := "max"
	if r.RateTarget > 0 {
		rate = strconv.FormatFloat(r.RateTarget, 'f', -1, 64) + "/s"
	}
	p := &errWriter{w: w}
	switch r.Mode {
	case "plain":
		p.printf("mode plain  target %s  conns %d  rate %s  %.1f s\n", r.Target, r.Conns, rate, r.Seconds)
	case "nts", "ke":
		p.printf("mode %s  target %s  conns %d  rate %s  %.1f s\n", r.Mode, r.Target, r.Conns, rate, r.Seconds)
	default:
		p.printf("mode spoof  target %s  sources %d x %d rounds  rate %s  %.1f s\n", r.Target, r.Sources, r.Rounds, rate, r.Seconds)
	}
	p.printf("sent      %d (%.0f/s)\n", r.Sent, r.SentPerSec)
	p.printf("replies   %d (%.0f/s over %.1f s to the last reply)  answered %.2f %%  loss %.2f %%\n", r.Replies, r.RepliesPerSec, r.ReplySeconds, r.AnsweredPct, r.LossPct)
	p.printf("kod %d  unmatched %d  bad %d  send errors %d  own socket drops %d\n", r.KoD, r.Unmatched, r.Bad, r.SendErrors, r.OwnDrops)
	if r.TargetDrops != nil {
		p.printf("target socket drops (receive buffer full) %d\n", *r.TargetDrops)
	}
	if r.FirstError != "" {
		p.printf("first failure: %s\n", r.FirstError)
	}
	p.printf("latency   p50 %.0f µs  p90 %.0f µs  p99 %.0f µs  max %.0f µs\n", r.P50us, r.P90us, r.P99us, r.MaxUs)
	if r.ResidenceP50us != nil {
		p.printf("server residence (transmit − receive timestamp)  p50 %.1f µs  p99 %.1f µs\n", *r.ResidenceP50us, *r.ResidenceP99us)
	}
	for _, s := range r.Samples {
		p.printf("%s\n", s.line())
	}
	return p.err
}

func (s Sample) line() string {
	l := fmt.Sprintf("t=%6.1fs sent=%d replies=%d", s.T, s.Sent, s.Replies)
	if s.Memory != nil {
		l += fmt.Sprintf(" VmRSS=%d kB VmHWM=%d kB", s.RSSkB, s.HWMkB)
	}
	return l
}

type errWriter struct {
	w   io.Writer
	err error
}

func (p *errWriter) printf(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}

// readMemory samples /proc/PID/status; nil when pid is 0 or unreadable.
func readMemory(pid int) *Memory {
	if pid == 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	m, ok := ParseStatus(string(b))
	if !ok {
		return nil
	}
	return &m
}

// socketDrops sums the drop counters of the UDP sockets bound to port,
// IPv4 and IPv6, in this process's network namespace (pid 0) or in that of
// process pid (the target may run in another namespace).
func socketDrops(pid int, port uint16) (uint64, bool) {
	dir := "/proc/net/"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/net/"
	}
	var total uint64
	var found bool
	for _, f := range []string{"udp", "udp6"} {
		b, err := os.ReadFile(dir + f)
		if err != nil {
			continue
		}
		d, ok := UDPDrops(string(b), port)
		total += d
		found = found || ok
	}
	return total, found
}

// progress samples the counters (and memory) every interval until done is
// closed, printing a line per sample unless quiet, and returns the samples
// with a first one at the start; the caller appends the last.
type progress struct {
	start  time.Time
	every  time.Duration
	pid    int
	cs     []*Counters
	out    io.Writer
	quiet  bool
	sample []Sample
}

func (p *progress) take() Sample {
	s := Sample{
		T:       time.Since(p.start).Seconds(),
		Sent:    sum(p.cs, func(c *Counters) *atomic.Uint64 { return &c.Sent }),
		Replies: sum(p.cs, func(c *Counters) *atomic.Uint64 { return &c.Replies }),
		Memory:  readMemory(p.pid),
	}
	if !p.quiet {
		fmt.Fprintln(p.out, s.line())
	}
	return s
}

// final returns the samples with one taken now at the end; a periodic
// sample taken within the last 100 ms is replaced rather than repeated.
func (p *progress) final() []Sample {
	s := p.sample
	if n := len(s); n > 1 && time.Since(p.start).Seconds()-s[n-1].T < 0.1 {
		s = s[:n-1]
	}
	return append(s, p.take())
}

func (p *progress) run(done <-chan struct{}) {
	p.sample = append(p.sample, p.take())
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			p.sample = append(p.sample, p.take())
		}
	}
}
