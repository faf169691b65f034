package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseAudit(t *testing.T) {
	c, err := Parse("t.conf", []byte(`auditlog /var/log/timegate/audit.log nosync
auditkey /etc/timegate/auditkey ed25519
auditcheckpoint records 500 interval 30
auditepisodes 5
auditship tls://collector.example:6514 ca /etc/ca.pem cert /etc/c.pem key /etc/k.pem servername logs spool 2097152 overflow drop-oldest
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Audit
	want := AuditShip{Transport: "tls", TLS: true, Addr: "collector.example:6514", CA: "/etc/ca.pem", Cert: "/etc/c.pem",
		Key: "/etc/k.pem", ServerName: "logs", SpoolMax: 2097152, Overflow: "drop-oldest"}
	if a.Log != "/var/log/timegate/audit.log" || !a.NoSync || a.KeyAlg != "ed25519" || a.CheckpointRecords != 500 ||
		a.CheckpointInterval != 30*time.Second || a.EpisodeInterval != 5*time.Second || a.Ship == nil || *a.Ship != want {
		t.Fatalf("%+v %+v", a, a.Ship)
	}
	c, err = Parse("t.conf", []byte("auditlog a.log\nauditship relp://127.0.0.1:2514\n"))
	if err != nil || c.Audit.KeyAlg != "ml-dsa-65" || c.Audit.Ship.Transport != "relp" || c.Audit.Ship.TLS || c.Audit.Ship.Overflow != "keep" {
		t.Fatalf("%v %+v", err, c.Audit.Ship)
	}
}

func TestParseAuditErrors(t *testing.T) {
	for text, want := range map[string]string{
		"auditship relp://h:1\n":                                 "t.conf:1: auditship: needs auditlog FILE",
		"auditlog a\nauditship http://h:1\n":                     "t.conf:2: auditship: want relp://",
		"auditlog a\nauditship tls://h:6514\n":                   "t.conf:2: auditship: tls needs ca FILE",
		"auditlog a\nauditship relp://h:1 ca x\n":                "t.conf:2: auditship: ca, cert and key need",
		"auditlog a\nauditship tls://h:1 ca x cert y\n":          "t.conf:2: auditship: cert and key must be given together",
		"auditlog a\nauditship relp://h:1 overflow drop\n":       "t.conf:2: auditship overflow: must be keep or drop-oldest",
		"auditlog a\nauditship relp://h:1 spool 10\n":            "t.conf:2: auditship spool: must be a byte count",
		"auditlog a\nauditkey k rsa\n":                           "t.conf:2: auditkey: algorithm must be",
		"auditlog a\nauditcheckpoint records 0\n":                "t.conf:2: auditcheckpoint records: value must be an integer 1..1000000",
		"auditlog a\nauditcheckpoint every 3\n":                  "t.conf:2: auditcheckpoint: unknown option",
		"auditlog a b\n":                                         "t.conf:1: auditlog: takes FILE [nosync]",
		"auditlog a\nauditlog b\n":                               "t.conf:2: auditlog: already set at line 1",
		"auditlog a\nauditepisodes 0\n":                          "t.conf:2: auditepisodes: must be a number of seconds 1..3600",
		"auditlog a\nauditship relp://h:99999\n":                 "t.conf:2: auditship: want relp://",
		"auditlog a\nauditship relp+tls://h:1 ca c servername\n": "t.conf:2: auditship: option \"servername\" needs a value",
	} {
		_, err := Parse("t.conf", []byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
