package harness

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// never is how chronyc -c prints an age or interval it has no value for
// (shown as "-" without -c).
const never = 4294967295

// Source is one row of chronyc 4.3 `-c sources` (10 fields):
//
//	^,*,127.0.0.1,5,-4,377,0,0.000000080,0.000000013,0.000001695
//	mode,state,name,stratum,poll,reach(octal),lastrx,adjusted offset,measured offset,error bound
//
// A source never heard from shows stratum 0, reach 0 and LastRx 4294967295.
type Source struct {
	Mode    string // ^ server, = peer, # reference clock
	State   string // * selected, + combined, - not combined, ? unusable/unreachable, x falseticker, ~ too variable
	Name    string // IP address (-c does no DNS lookups)
	Stratum int
	Poll    int   // log2 seconds
	Reach   uint8 // the reach register (printed in octal: 377 = 0xff)
	LastRx  int64 // seconds since the last good sample; -1 for never
	// Offsets in seconds; positive means the local clock is ahead of the source
	// (a server 3 s ahead shows -3). Adjusted is corrected for later slewing.
	AdjustedOffset, MeasuredOffset float64
	ErrorBound                     float64 // the "+/-" margin
}

// Selected reports whether chrony selected the source for synchronisation.
func (s Source) Selected() bool { return s.State == "*" }

// FindSource returns the source named name (an IP address).
func FindSource(srcs []Source, name string) (Source, bool) {
	for _, s := range srcs {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// ParseSources parses `chronyc -c sources` rows.
func ParseSources(rows [][]string) ([]Source, error) {
	var out []Source
	for _, r := range rows {
		p := fieldParser{name: "sources", row: r}
		if !p.count(10) {
			return nil, p.err
		}
		reach, err := strconv.ParseUint(r[5], 8, 8)
		if err != nil {
			return nil, fmt.Errorf("sources: reach %q: %w", r[5], err)
		}
		out = append(out, Source{
			Mode: r[0], State: r[1], Name: r[2],
			Stratum: p.int(3), Poll: p.int(4), Reach: uint8(reach), LastRx: p.age(6),
			AdjustedOffset: p.float(7), MeasuredOffset: p.float(8), ErrorBound: p.float(9),
		})
		if p.err != nil {
			return nil, p.err
		}
	}
	return out, nil
}

// SourceStats is one row of chronyc 4.3 `-c sourcestats` (8 fields):
//
//	127.0.0.1,9,6,1,-0.107,0.292,-0.000000007,0.000000032
//	name,np,nr,span,frequency,freq skew,offset,std dev
type SourceStats struct {
	Name      string
	Samples   int     // NP: samples kept
	Runs      int     // NR: runs of residuals of one sign
	Span      int64   // seconds between the oldest and newest sample
	Frequency float64 // ppm
	FreqSkew  float64 // ppm
	Offset    float64 // seconds
	StdDev    float64 // seconds
}

// ParseSourceStats parses `chronyc -c sourcestats` rows.
func ParseSourceStats(rows [][]string) ([]SourceStats, error) {
	var out []SourceStats
	for _, r := range rows {
		p := fieldParser{name: "sourcestats", row: r}
		if !p.count(8) {
			return nil, p.err
		}
		out = append(out, SourceStats{Name: r[0], Samples: p.int(1), Runs: p.int(2), Span: p.int64(3),
			Frequency: p.float(4), FreqSkew: p.float(5), Offset: p.float(6), StdDev: p.float(7)})
		if p.err != nil {
			return nil, p.err
		}
	}
	return out, nil
}

// AuthData is one row of chronyc 4.3 `-c authdata` (10 fields):
//
//	127.0.0.1,NTS,1,15,256,5,0,0,8,100
//	127.0.0.2,SK,1,13,128,4294967295,0,0,0,0
//	::1,-,0,0,0,4294967295,0,0,0,0
//	name,mode,keyid,type,klen,last,atmp,nak,cook,clen
type AuthData struct {
	Name string
	Mode string // NTS, SK (symmetric key) or - (none)
	// KeyID is the key's ID in the keyfile for SK; for NTS it counts the NTS-KE
	// sessions run with this source (1 after the first).
	KeyID uint32
	// Type is the algorithm as a number: for NTS the AEAD id (15 =
	// AES-SIV-CMAC-256), for SK chrony's hash/cipher id (13 = AES128 CMAC,
	// 14 = AES256 CMAC, 2 = SHA1, 1 = MD5). The text output shows the same numbers.
	Type int
	// KeyLen is the key length in bits (256 for AES-SIV-CMAC-256, 128 for AES128).
	KeyLen int
	// LastKE is the age in seconds of the last successful NTS-KE; -1 for never
	// (always -1 for SK).
	LastKE    int64
	Attempts  int  // NTS-KE attempts since the last success
	NAK       bool // an NTS NAK arrived since the last request
	Cookies   int  // cookies held (8 after a KE)
	CookieLen int  // bytes per cookie (chronyd as server: 100)
}

// FindAuthData returns the row for name.
func FindAuthData(rows []AuthData, name string) (AuthData, bool) {
	for _, a := range rows {
		if a.Name == name {
			return a, true
		}
	}
	return AuthData{}, false
}

// ParseAuthData parses `chronyc -c authdata` rows.
func ParseAuthData(rows [][]string) ([]AuthData, error) {
	var out []AuthData
	for _, r := range rows {
		p := fieldParser{name: "authdata", row: r}
		if !p.count(10) {
			return nil, p.err
		}
		out = append(out, AuthData{Name: r[0], Mode: r[1], KeyID: uint32(p.int64(2)), Type: p.int(3),
			KeyLen: p.int(4), LastKE: p.age(5), Attempts: p.int(6), NAK: p.int(7) != 0,
			Cookies: p.int(8), CookieLen: p.int(9)})
		if p.err != nil {
			return nil, p.err
		}
	}
	return out, nil
}

// Tracking is chronyc 4.3 `-c tracking` (one row, 14 fields):
//
//	7F000001,127.0.0.1,6,1795780653.182407122,-0.000001251,-0.000000067,0.000000058,0.005,-0.107,0.024,0.000003116,0.000000374,0.1,Normal
//	refid,ref name,stratum,ref time,system time,last offset,rms offset,frequency,residual freq,skew,root delay,root dispersion,update interval,leap status
//
// Unsynchronised: 00000000,,0,0.000000000,...,Not synchronised.
type Tracking struct {
	RefID   string // hex, as NTP carries it: 7F000001 for 127.0.0.1; 7F7F0101 is chrony's "local" refid
	RefName string // the reference's address; empty for local or none
	Stratum int    // our stratum: the selected source's + 1
	RefTime time.Time
	// SystemTime is the remaining correction in seconds; the text output says
	// "0.000001251 seconds fast of NTP time" for -0.000001251.
	SystemTime     float64
	LastOffset     float64 // seconds
	RMSOffset      float64 // seconds
	Frequency      float64 // ppm; positive prints as "fast" in the text output
	ResidualFreq   float64 // ppm
	Skew           float64 // ppm
	RootDelay      float64 // seconds
	RootDispersion float64 // seconds
	UpdateInterval float64 // seconds
	Leap           string  // Normal, Insert second, Delete second, Not synchronised
}

// ParseTracking parses `chronyc -c tracking`.
func ParseTracking(rows [][]string) (Tracking, error) {
	if len(rows) != 1 {
		return Tracking{}, fmt.Errorf("tracking: want 1 row, got %d", len(rows))
	}
	r := rows[0]
	p := fieldParser{name: "tracking", row: r}
	if !p.count(14) {
		return Tracking{}, p.err
	}
	tr := Tracking{RefID: r[0], RefName: r[1], Stratum: p.int(2), RefTime: p.time(3),
		SystemTime: p.float(4), LastOffset: p.float(5), RMSOffset: p.float(6), Frequency: p.float(7),
		ResidualFreq: p.float(8), Skew: p.float(9), RootDelay: p.float(10), RootDispersion: p.float(11),
		UpdateInterval: p.float(12), Leap: r[13]}
	return tr, p.err
}

// ServerStats is chronyc 4.3 `-c serverstats` (one row, 11 fields):
//
//	184,0,2,0,0,1,0,91,0,0,0
//	ntp rx,ntp dropped,cmd rx,cmd dropped,log dropped,nts-ke accepted,nts-ke dropped,auth ntp,interleaved,ts held,ts span
type ServerStats struct {
	NTPPackets        uint64 // NTP packets received
	NTPDropped        uint64 // dropped (rate limiting, access)
	CmdPackets        uint64 // command packets received (each chronyc call counts)
	CmdDropped        uint64
	LogDropped        uint64 // client log records dropped
	NTSKEAccepted     uint64 // NTS-KE connections accepted
	NTSKEDropped      uint64
	AuthNTPPackets    uint64 // authenticated NTP packets (NTS or symmetric key)
	InterleavedPkts   uint64
	TimestampsHeld    uint64
	TimestampSpanSecs uint64
}

// ParseServerStats parses `chronyc -c serverstats`.
func ParseServerStats(rows [][]string) (ServerStats, error) {
	if len(rows) != 1 {
		return ServerStats{}, fmt.Errorf("serverstats: want 1 row, got %d", len(rows))
	}
	p := fieldParser{name: "serverstats", row: rows[0]}
	if !p.count(11) {
		return ServerStats{}, p.err
	}
	s := ServerStats{p.uint(0), p.uint(1), p.uint(2), p.uint(3), p.uint(4), p.uint(5), p.uint(6),
		p.uint(7), p.uint(8), p.uint(9), p.uint(10)}
	return s, p.err
}

// Client is one row of chronyc 4.3 `-c clients` (10 fields):
//
//	127.0.0.1,543,0,-4,127,0,0,0,127,4294967295
//	address,ntp hits,ntp drops,ntp interval,ntp last interval,ntp last,cmd hits,cmd drops,cmd interval,cmd last
//
// Intervals are log2 seconds, 127 when unknown; ages are seconds, -1 for never.
type Client struct {
	Addr                     string
	NTPHits, NTPDrops        int64
	NTPInterval, NTPLastIntv int
	NTPLast                  int64
	CmdHits, CmdDrops        int64
	CmdInterval              int
	CmdLast                  int64
}

// ParseClients parses `chronyc -c clients` rows.
func ParseClients(rows [][]string) ([]Client, error) {
	var out []Client
	for _, r := range rows {
		p := fieldParser{name: "clients", row: r}
		if !p.count(10) {
			return nil, p.err
		}
		out = append(out, Client{Addr: r[0], NTPHits: p.int64(1), NTPDrops: p.int64(2), NTPInterval: p.int(3),
			NTPLastIntv: p.int(4), NTPLast: p.age(5), CmdHits: p.int64(6), CmdDrops: p.int64(7),
			CmdInterval: p.int(8), CmdLast: p.age(9)})
		if p.err != nil {
			return nil, p.err
		}
	}
	return out, nil
}

// NTPDataFields names the 34 fields of chronyc 4.3 `-c ntpdata ADDR`, in order,
// after the labels of its text output:
//
//	127.0.0.1,7F000001,11123,127.0.0.1,7F000001,Normal,4,Server,5,-4,0,-26,0.000000015,
//	0.000000,0.000000,7F7F0101,,1795780646.113081253,-0.000000765,0.000005095,0.000000035,
//	0.000054337,0.47,111,111,1101,No,Yes,Kernel,Kernel,91,91,91,60
//
// Addresses come with their refid form (an IPv6 address as its RFC 5905 hash,
// ::1 → CF404DC8); "Poll seconds" and "Precision seconds" are the text output's
// parenthesised values; "NTP tests A/B/C" are the three groups of test bits of
// the text output (a healthy loopback server showed 111 111 1101, a faketime'd
// one 111 111 1111). Authenticated is Yes or No. A source never heard from has
// Mode "Invalid", Local address "[UNSPEC]" and Total RX 0.
var NTPDataFields = [...]string{
	"Remote address", "Remote address ID", "Remote port", "Local address", "Local address ID",
	"Leap status", "Version", "Mode", "Stratum", "Poll interval", "Poll seconds",
	"Precision", "Precision seconds", "Root delay", "Root dispersion",
	"Reference ID", "Reference name", "Reference time", "Offset", "Peer delay",
	"Peer dispersion", "Response time", "Jitter asymmetry", "NTP tests A", "NTP tests B",
	"NTP tests C", "Interleaved", "Authenticated", "TX timestamping", "RX timestamping",
	"Total TX", "Total RX", "Total valid RX", "Total good RX",
}

// ParseNTPData maps one `chronyc -c ntpdata` row onto NTPDataFields.
func ParseNTPData(row []string) (map[string]string, error) {
	if len(row) != len(NTPDataFields) {
		return nil, fmt.Errorf("ntpdata: want %d fields (chrony 4.3), got %d: %q", len(NTPDataFields), len(row), strings.Join(row, ","))
	}
	m := make(map[string]string, len(row))
	for i, v := range row {
		m[NTPDataFields[i]] = v
	}
	return m, nil
}

// fieldParser converts CSV fields and keeps the first error.
type fieldParser struct {
	name string
	row  []string
	err  error
}

func (p *fieldParser) count(n int) bool {
	if len(p.row) != n {
		p.err = fmt.Errorf("%s: want %d fields (chrony 4.3), got %d: %q", p.name, n, len(p.row), strings.Join(p.row, ","))
		return false
	}
	return true
}

func (p *fieldParser) fail(i int, err error) {
	if p.err == nil {
		p.err = fmt.Errorf("%s: field %d %q: %w", p.name, i, p.row[i], err)
	}
}

func (p *fieldParser) int64(i int) int64 {
	v, err := strconv.ParseInt(p.row[i], 10, 64)
	if err != nil {
		p.fail(i, err)
	}
	return v
}

func (p *fieldParser) int(i int) int { return int(p.int64(i)) }

func (p *fieldParser) uint(i int) uint64 {
	v, err := strconv.ParseUint(p.row[i], 10, 64)
	if err != nil {
		p.fail(i, err)
	}
	return v
}

// age maps chronyc's 4294967295 ("never") to -1.
func (p *fieldParser) age(i int) int64 {
	v := p.int64(i)
	if v == never {
		return -1
	}
	return v
}

func (p *fieldParser) float(i int) float64 {
	v, err := strconv.ParseFloat(p.row[i], 64)
	if err != nil {
		p.fail(i, err)
	}
	return v
}

// time parses "1795780653.182407122" (seconds since the Unix epoch).
func (p *fieldParser) time(i int) time.Time {
	sec, frac, _ := strings.Cut(p.row[i], ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		p.fail(i, err)
		return time.Time{}
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			p.fail(i, err)
			return time.Time{}
		}
	}
	if s == 0 && ns == 0 {
		return time.Time{}
	}
	return time.Unix(s, ns).UTC()
}
