package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"timegate/ntp"
	"timegate/upstream"
)

// queryResult is what gatectl query prints; the JSON names are a stable
// interface for scripts and tests.
type queryResult struct {
	Server          string  `json:"server"`
	OffsetS         float64 `json:"offset_s"`
	DelayS          float64 `json:"delay_s"`
	Stratum         uint8   `json:"stratum"`
	RefID           string  `json:"refid"`
	Leap            uint8   `json:"leap"`
	RootDelayS      float64 `json:"root_delay_s"`
	RootDispersionS float64 `json:"root_dispersion_s"`
	RootDistanceS   float64 `json:"root_distance_s"`
	Precision       int8    `json:"precision"`
	Poll            int8    `json:"poll"`
	RefTime         string  `json:"reference_time,omitempty"`
	Synchronised    bool    `json:"synchronised"`
	Kiss            string  `json:"kiss,omitempty"`
	Problem         string  `json:"problem,omitempty"`
}

func runQuery(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gatectl query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 123, "NTP server UDP `port`")
	asJSON := fs.Bool("json", false, "print one JSON object")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this `duration`")
	version := fs.Int("version", 4, "NTP `version` of the request (3 or 4)")
	useNTS := fs.Bool("nts", false, "authenticate with NTS (RFC 8915): NTS-KE with HOST[:KEPORT], then NTP with the server it negotiates")
	caFile := fs.String("ca", "", "with -nts: trust only the CA certificates in this PEM `file` instead of the system roots")
	aeads := fs.String("aead", "30,15", "with -nts: AEAD algorithms to offer, in order (`list` of 15 = AES-SIV-CMAC-256, 30 = AES-128-GCM-SIV)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *useNTS {
		return runQueryNTS(fs, ntsQuery{caFile: *caFile, aeads: *aeads, timeout: *timeout}, *port, *version, *asJSON, stdout, stderr)
	}
	if fs.NArg() != 1 || (*version != 3 && *version != 4) || *caFile != "" {
		fmt.Fprint(stderr, "usage: gatectl query [-port P] [-json] [-timeout D] [-version 3|4] HOST\n"+
			"       gatectl query -nts [-ca FILE] [-aead LIST] [-port P] [-json] [-timeout D] HOST[:KEPORT]\n")
		return exitUsage
	}
	addr := net.JoinHostPort(fs.Arg(0), strconv.Itoa(*port))
	res, err := queryNTP(addr, uint8(*version), *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "gatectl: query %s: %v\n", addr, err)
		return exitFail
	}
	printResult(stdout, res, *asJSON)
	if !res.Synchronised {
		return exitUnsound
	}
	return exitOK
}

// queryNTP performs one client exchange with the RFC 5905 reply checks.
func queryNTP(addr string, version uint8, timeout time.Duration) (*queryResult, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var nb [8]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, err
	}
	nonce := ntp.Time64(binary.BigEndian.Uint64(nb[:]) | 1) // never zero
	conn.SetDeadline(time.Now().Add(timeout))
	t1 := time.Now()
	if _, err := conn.Write(ntp.ClientRequest(nil, version, 0, nonce)); err != nil {
		return nil, err
	}
	buf := make([]byte, ntp.MaxPacketLen)
	for {
		n, err := conn.Read(buf)
		t4 := time.Now()
		if err != nil {
			return nil, err
		}
		s, err := ntp.CheckReply(buf[:n], version, nonce, t1, t4)
		if errors.Is(err, ntp.ErrBogusOrigin) || errors.Is(err, ntp.ErrShort) {
			continue // not an answer to this request: keep waiting
		}
		return describe(addr, &s, err)
	}
}

func describe(addr string, s *ntp.Sample, err error) (*queryResult, error) {
	h := &s.Header
	r := &queryResult{
		Server: addr, Stratum: h.Stratum, Leap: uint8(h.Leap), Precision: h.Precision, Poll: h.Poll,
		RefID: ntp.RefIDString(h.Stratum, h.RefID), RootDelayS: h.RootDelay.Duration().Seconds(),
		RootDispersionS: h.RootDispersion.Duration().Seconds(),
	}
	switch {
	case errors.Is(err, ntp.ErrKiss):
		r.Kiss = ntp.KissCode(h.RefID).String()
		r.Problem = "Kiss-o'-Death " + r.Kiss
		return r, nil
	case errors.Is(err, ntp.ErrBadStratum), errors.Is(err, ntp.ErrUnsynced):
		r.Problem = "server is unsynchronised (leap 3 or stratum 16): its time must not be trusted"
		if why, ok := upstream.ExplainRefID(h.RefID); ok && h.Stratum >= 16 {
			r.Problem += "; timegate says: " + why
		}
	case err != nil:
		return nil, err
	default:
		r.Synchronised = true
	}
	r.OffsetS = s.Offset.Seconds()
	r.DelayS = s.Delay.Seconds()
	r.RootDistanceS = s.RootDistance().Seconds()
	if h.RefTime != 0 {
		r.RefTime = h.RefTime.Time(time.Now()).Format(time.RFC3339Nano)
	}
	return r, nil
}

func printResult(w io.Writer, r *queryResult, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.Encode(r)
		return
	}
	fmt.Fprintf(w, "server:          %s\n", r.Server)
	if r.Kiss != "" {
		fmt.Fprintf(w, "kiss-o'-death:   %s\n", r.Kiss)
		return
	}
	fmt.Fprintf(w, "stratum:         %d\n", r.Stratum)
	fmt.Fprintf(w, "refid:           %s\n", r.RefID)
	fmt.Fprintf(w, "leap:            %d\n", r.Leap)
	fmt.Fprintf(w, "offset:          %+.9f s\n", r.OffsetS)
	fmt.Fprintf(w, "delay:           %.9f s\n", r.DelayS)
	fmt.Fprintf(w, "root delay:      %.6f s\n", r.RootDelayS)
	fmt.Fprintf(w, "root dispersion: %.6f s\n", r.RootDispersionS)
	fmt.Fprintf(w, "root distance:   %.6f s\n", r.RootDistanceS)
	fmt.Fprintf(w, "precision:       2^%d s\n", r.Precision)
	if r.RefTime != "" {
		fmt.Fprintf(w, "reference time:  %s\n", r.RefTime)
	}
	if r.Problem != "" {
		fmt.Fprintf(w, "WARNING:         %s\n", r.Problem)
	}
}
