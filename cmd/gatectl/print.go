package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"timegate/internal/gateway"
	"timegate/internal/report"
)

func printf(w io.Writer, format string, a ...any) { fmt.Fprintf(w, format, a...) }

// secs formats seconds with a unit that keeps 3-4 significant digits, as
// chronyc does ("+12us", "-3.41ms").
func secs(v float64, signed bool) string {
	sign := ""
	if signed && v >= 0 {
		sign = "+"
	}
	a := math.Abs(v)
	switch {
	case a == 0:
		return sign + "0"
	case a < 1e-6:
		return sign + strconv.FormatFloat(v*1e9, 'f', 0, 64) + "ns"
	case a < 1e-3:
		return sign + strconv.FormatFloat(v*1e6, 'f', 1, 64) + "us"
	case a < 1:
		return sign + strconv.FormatFloat(v*1e3, 'f', 2, 64) + "ms"
	}
	return sign + strconv.FormatFloat(v, 'f', 3, 64) + "s"
}

// ago formats an age in seconds like chronyc's LastRx column; "-" for none.
func ago(v float64) string {
	switch {
	case v < 0:
		return "-"
	case v < 1024:
		return strconv.FormatFloat(v, 'f', 0, 64) + "s"
	case v < 86400*2:
		return strconv.FormatFloat(v/60, 'f', 0, 64) + "m"
	}
	return strconv.FormatFloat(v/86400, 'f', 0, 64) + "d"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func printStatus(w io.Writer, s *report.Status) {
	line := func(k, v string) { printf(w, "%-16s: %s\n", k, v) }
	line("State", s.State)
	if s.Reason != "" {
		line("Why", s.Reason)
	}
	if s.SystemPeer != "" {
		line("System peer", s.SystemPeer)
	}
	line("Stratum", strconv.Itoa(int(s.Stratum)))
	line("Reference ID", s.RefID)
	line("Ref time", stamp(s.RefTime))
	line("Leap status", s.Leap)
	if s.LeapTable != "" {
		exp := "no expiry date in the file"
		if !s.LeapTableExpires.IsZero() {
			exp = "expires " + s.LeapTableExpires.UTC().Format("2006-01-02")
			if s.LeapTableExpired {
				exp = "EXPIRED " + s.LeapTableExpires.UTC().Format("2006-01-02") + ": the upstream vote decides"
			}
		}
		line("Leap table", fmt.Sprintf("%s (%d entries, %s)", s.LeapTable, s.LeapTableEntries, exp))
	}
	line("Offset", fmt.Sprintf("%+.9f seconds (served time minus system clock)", s.Offset))
	line("Frequency", fmt.Sprintf("%+.3f ppm", s.FrequencyPPM))
	line("Drift", fmt.Sprintf("%+.6f ppm, skew %.6f ppm (estimate, as the drift file keeps it)", s.DriftPPM, s.SkewPPM))
	line("Root delay", fmt.Sprintf("%.9f seconds", s.RootDelay))
	line("Root dispersion", fmt.Sprintf("%.9f seconds", s.RootDispersion))
	line("Root distance", fmt.Sprintf("%.9f seconds", s.RootDistance))
	est := "none yet"
	if s.SinceEstimate >= 0 {
		est = fmt.Sprintf("%.1f seconds ago", s.SinceEstimate)
	}
	if s.SinceEstimate >= 0 {
		est += fmt.Sprintf(", sources %+.9f seconds from the system clock", s.EstimateOffset)
	}
	line("Last estimate", est)
	line("Sources", fmt.Sprintf("%d configured, %d agree, minsources %d", s.Sources, s.Truechimers, s.MinSources))
	line("Uptime", fmt.Sprintf("%s (since %s)", (time.Duration(s.Uptime)*time.Second).String(), stamp(s.Started)))
	line("Config", fmt.Sprintf("%s (loaded %s)", s.ConfigFile, stamp(s.ConfigLoaded)))
	if s.Audit != nil {
		printAudit(line, s.Audit)
	}
	line("Version", s.Version)
	for _, wn := range s.Warnings {
		line("Warning", wn)
	}
}

// printAudit shows the audit trail in status: the local log, then its
// shipping. What needs an operator (failing writes, dropped events, a
// disconnected collector, the backlog alarm) is in capitals or named, and
// what is fine stays short.
func printAudit(line func(k, v string), a *report.AuditStatus) {
	v := fmt.Sprintf("%s, seq %d, %s, %s on disk", a.File, a.LastSeq, plural(a.Segments, "segment"), ibytes(a.DiskBytes))
	if a.DroppedTotal > 0 {
		v += fmt.Sprintf(", %s dropped since start", plural(int(a.DroppedTotal), "event"))
	}
	line("Audit log", v)
	if a.WriteFailing {
		line("Audit log", "WRITE FAILING, events are being lost: "+a.LastWriteError)
	}
	if a.RotateError != "" {
		line("Audit log", "ROTATION FAILING, the live file keeps growing: "+a.RotateError)
	}
	sh := a.Shipping
	if sh == nil {
		return
	}
	v = sh.Target + " connected since " + stamp(sh.Since)
	if !sh.Connected {
		v = sh.Target + " DISCONNECTED since " + stamp(sh.Since)
		if sh.LastError != "" {
			v += " (" + sh.LastError + ")"
		}
	}
	v += fmt.Sprintf(", acked seq %d, backlog %s", sh.AckedSeq, ibytes(sh.BacklogBytes))
	if sh.Alarm {
		v += fmt.Sprintf(", ALARM: over its limit of %s", ibytes(sh.SpoolMax))
	}
	if sh.Skipped > 0 {
		v += fmt.Sprintf(", %s given up (overflow drop-oldest)", plural(int(sh.Skipped), "record"))
	}
	line("Audit shipping", v)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// ibytes formats a byte count in binary units with one decimal ("12.5 MiB").
func ibytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

// stateMark is chronyc's two-character prefix, adapted: * selected,
// + combined, - candidate, x falseticker, ~ too far, ? unreachable or other.
func stateMark(state string) string {
	switch state {
	case report.SourceSelected:
		return "*"
	case report.SourceCombined:
		return "+"
	case report.SourceCandidate:
		return "-"
	case report.SourceFalseticker:
		return "x"
	case report.SourceTooFar:
		return "~"
	}
	return "?"
}

func authColumn(s *report.Source) string {
	switch s.Auth {
	case "nts":
		if s.SinceKE >= 0 {
			return fmt.Sprintf("NTS %dck KE %s ago", s.Cookies, ago(s.SinceKE))
		}
		return fmt.Sprintf("NTS %dck", s.Cookies)
	case "key":
		if s.KeyType != "" {
			return fmt.Sprintf("key %d %s", s.KeyID, s.KeyType)
		}
		return fmt.Sprintf("key %d", s.KeyID)
	}
	return "none"
}

// modeColumn is the exchange mode: "interleaved" when the latest reply
// was, "basic" otherwise, marked "basic(x)" for an xleave source whose
// server is answering in basic mode.
func modeColumn(s *report.Source) string {
	switch {
	case s.Interleaved:
		return "interleaved"
	case s.XLeave:
		return "basic(x)"
	}
	return "basic"
}

func printSources(w io.Writer, rows []report.Source) {
	if len(rows) == 0 {
		printf(w, "no upstream sources configured\n")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "S\tNAME\tADDRESS\tSTATE\tAUTH\tMODE\tSTR\tPOLL\tREACH\tLASTRX\tOFFSET\tDELAY\tJITTER\tWHY")
	for i := range rows {
		s := &rows[i]
		addr := s.Address
		if addr == "" && s.KEAddress != "" {
			addr = "KE " + s.KEAddress // an NTS pool's address before its NTS-KE
		}
		if addr == "" {
			addr = "-"
		}
		why := s.Why
		if s.State == report.SourceSelected || s.State == report.SourceCombined {
			why = ""
		}
		off, delay, jitter := "-", "-", "-"
		if s.Samples > 0 {
			off, delay, jitter = secs(s.Offset, true), secs(s.Delay, false), secs(s.Jitter, false)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%03o\t%s\t%s\t%s\t%s\t%s\n",
			stateMark(s.State), s.Name, addr, s.State, authColumn(s), modeColumn(s), s.Stratum, s.Poll, s.Reach,
			ago(s.SinceRx), off, delay, jitter, why)
	}
	tw.Flush()
	printf(w, "\nS: * selected, + combined, - candidate, x falseticker, ~ too far, ? other (see STATE)\n")
	printf(w, "MODE: interleaved or basic (RFC 9769); basic(x): xleave asked, the server answers basic\n")
}

// sortedKeys returns m's keys in order, so tables are stable.
func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func printCounts(w io.Writer, title string, m map[string]uint64) {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	printf(w, "%-24s: %s\n", title, strings.Join(parts, ", "))
}

func printServerStats(w io.Writer, s *report.ServerStats) {
	n := &s.NTP
	printf(w, "%-24s: %d\n", "NTP requests received", n.Received)
	printCounts(w, "Received by mode", n.ByMode)
	printf(w, "%-24s: %d\n", "NTP replies sent", n.Replied)
	printCounts(w, "Answered by auth", n.Answered)
	printCounts(w, "Dropped by reason", n.Dropped)
	printf(w, "%-24s: %d (socket buffer full; see ntprcvbuf)\n", "Dropped by kernel", n.KernelDrops)
	printCounts(w, "Kiss-o'-Death sent", n.KoD)
	printf(w, "%-24s: %d\n", "NTS NAKs sent", n.NTSNAK)
	printf(w, "%-24s: %d\n", "Answered by leak", n.Leaked)
	printf(w, "%-24s: %d\n", "Send errors", n.SendErrors)
	printf(w, "%-24s: %d (kernel transmit stamps %d)\n", "Interleaved replies", n.Interleaved, n.TxStamps)
	printf(w, "%-24s: %d of %d\n", "Timestamps held", n.Timestamps, n.TimestampCapacity)
	printf(w, "%-24s: %.2f us (lag %.2f us less stamp cost %.2f us; from %d kernel stamps)\n", "Basic transmit lead",
		float64(n.TxLeadNS)/1e3, float64(n.TxLeadLagNS)/1e3, float64(n.TxLeadCostNS)/1e3, n.LeadProbes)
	k := &s.KE
	printf(w, "%-24s: %d accepted, %d active, %d served\n", "NTS-KE sessions", k.Accepted, k.Active, k.Served)
	if k.Helpers > 0 {
		printf(w, "%-24s: %d processes, %d restarts, %d failures not passed to the audit trail\n", "NTS-KE helpers", k.Helpers, k.HelperRestarts, k.HelperFailuresLost)
	}
	printCounts(w, "NTS-KE refused", k.Refused)
	printCounts(w, "NTS-KE failed", k.Failed)
	printRate(w, "NTP rate table", &s.Rate.NTP)
	if s.Rate.KE != nil {
		printRate(w, "NTS-KE rate table", s.Rate.KE)
	}
}

func printRate(w io.Writer, title string, t *report.RateTable) {
	if !t.Enabled {
		printf(w, "%-24s: off\n", title)
		return
	}
	printf(w, "%-24s: %d of %d entries, %d evictions\n", title, t.Entries, t.Capacity, t.Evictions)
}

func printClients(w io.Writer, c *report.Clients) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tREQUESTS\tLIMITED\tLASTRX")
	for _, r := range c.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Prefix, r.Requests, r.Limited, ago(r.SinceRx))
	}
	tw.Flush()
	printf(w, "\n%d of %d tracked prefixes shown (the rate table tracks sources under a `limited` rule)\n", len(c.Rows), c.Tracked)
}

func printKeyRing(w io.Writer, k *report.KeyRing) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if k.Fleet != nil {
		fmt.Fprintln(tw, "ID\tROLE\tCREATED\tAGE\tSEALS FROM")
	} else {
		fmt.Fprintln(tw, "ID\tROLE\tCREATED\tAGE")
	}
	for _, key := range k.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s", key.ID, key.Role, stamp(key.Created), (time.Duration(key.Age) * time.Second).String())
		if k.Fleet != nil {
			fmt.Fprintf(tw, "\t%s", stamp(key.Seals))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if f := k.Fleet; f != nil {
		printFleet(w, f)
		return
	}
	if k.Follow {
		printf(w, "\nrotation: by the NTS-KE host sharing the file (ntsport 0: re-read when it changes, and on reload)\n")
	} else if k.RotateEvery == 0 {
		printf(w, "\nrotation: by hand only (ntsrotate 0)\n")
	} else {
		printf(w, "\nrotation: every %s, next %s\n", time.Duration(k.RotateEvery*1e9), stamp(k.NextRotate))
	}
	printf(w, "file: %s\n", k.File)
}

func printSymList(w io.Writer, l *gateway.SymList) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tNOTE")
	for _, k := range l.Keys {
		note := ""
		if k.Legacy {
			note = "legacy digest: prefer AES128/AES256 (RFC 8573)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", k.ID, k.Type, note)
	}
	tw.Flush()
	printf(w, "\nfile: %s\n", l.File)
}

func printCert(w io.Writer, c *report.Cert) {
	line := func(k, v string) { printf(w, "%-12s: %s\n", k, v) }
	line("Certificate", c.CertFile)
	line("Key", c.KeyFile)
	line("Subject", c.Subject)
	line("Issuer", c.Issuer)
	line("DNS names", orNone(c.DNSNames))
	line("IP addresses", orNone(c.IPAddresses))
	line("Key type", c.KeyType)
	line("Not before", stamp(c.NotBefore))
	line("Not after", stamp(c.NotAfter))
	days := c.ExpiresIn / 86400
	line("Expires in", fmt.Sprintf("%.1f days", days))
	line("SHA-256", c.SHA256)
	line("Chain", fmt.Sprintf("%d certificate(s)", c.ChainLength))
	line("Self-signed", strconv.FormatBool(c.SelfSigned))
	line("Loaded", stamp(c.Loaded))
	if days < 7 {
		line("WARNING", "expires within a week (or has expired): replace it")
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func printFleet(w io.Writer, f *report.Fleet) {
	state := "connected"
	if !f.Connected {
		state = "UNREACHABLE: serving the last good ring, no rotation until etcd answers"
	}
	printf(w, "\nfleet store: etcd %s prefix %s\n", strings.Join(f.Endpoints, ","), f.Prefix)
	printf(w, "state: %s since %s; last good read %s\n", state, stamp(f.Since), stamp(f.LastSync))
	if f.LastError != "" && !f.Connected {
		printf(w, "last error: %s\n", f.LastError)
	}
	printf(w, "propagation delay %s, grace %s; refused entries %d; rotations published here %d\n",
		time.Duration(f.Delay*1e9), time.Duration(f.Grace*1e9), f.Refused, f.Published)
	if f.Policy.IsZero() {
		printf(w, "access policy and rate limit: this gateway's configuration file (no fleet policy)\n")
	} else {
		printf(w, "access policy and rate limit: the fleet's, published %s\n", stamp(f.Policy))
	}
	if !f.Cutoff.IsZero() {
		printf(w, "revoked (keys nts prune --fleet): every key that began sealing before %s\n", stamp(f.Cutoff))
	}
}
