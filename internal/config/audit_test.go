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
auditrotate size 1048576 keep 0
auditship tls://collector.example:6514 ca /etc/ca.pem cert /etc/c.pem key /etc/k.pem servername logs spool 2097152 overflow drop-oldest
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Audit
	want := AuditShip{Transport: "tls", TLS: true, Addr: "collector.example:6514", CA: "/etc/ca.pem", Cert: "/etc/c.pem",
		Key: "/etc/k.pem", ServerName: "logs", SpoolMax: 2097152, Overflow: "drop-oldest"}
	if a.Log != "/var/log/timegate/audit.log" || !a.NoSync || a.KeyAlg != "ed25519" || a.CheckpointRecords != 500 ||
		a.CheckpointInterval != 30*time.Second || a.EpisodeInterval != 5*time.Second || a.RotateSize != 1<<20 || a.RotateKeep != 0 ||
		a.Ship == nil || *a.Ship != want {
		t.Fatalf("%+v %+v", a, a.Ship)
	}
	c, err = Parse("t.conf", []byte("auditlog a.log\nauditship relp://127.0.0.1:2514\n"))
	if err != nil || c.Audit.KeyAlg != "ml-dsa-65" || c.Audit.Ship.Transport != "relp" || c.Audit.Ship.TLS || c.Audit.Ship.Overflow != "keep" {
		t.Fatalf("%v %+v", err, c.Audit.Ship)
	}
	// Rotation is on by default; each option alone leaves the other's
	// default; size 0 turns it off.
	for text, want := range map[string][3]int64{
		"auditlog a\n":                                        {DefaultAuditRotateSize, DefaultAuditRotateKeep, 0},
		"auditlog a\nauditrotate size 0\n":                    {0, DefaultAuditRotateKeep, 0},
		"auditlog a\nauditrotate keep 100000\n":               {DefaultAuditRotateSize, 100000, 0},
		"auditlog a\nauditrotate keep 3 size 1099511627776\n": {1 << 40, 3, 0},
		"auditlog a\nauditrotate interval 86400 keep 90\n":    {DefaultAuditRotateSize, 90, 86400},
		"auditlog a\nauditrotate interval 0\n":                {DefaultAuditRotateSize, DefaultAuditRotateKeep, 0},
	} {
		c, err := Parse("t.conf", []byte(text))
		if err != nil || c.Audit.RotateSize != want[0] || int64(c.Audit.RotateKeep) != want[1] || c.Audit.RotateEvery != time.Duration(want[2])*time.Second {
			t.Errorf("%q: %v size %d keep %d every %v, want %v", text, err, c.Audit.RotateSize, c.Audit.RotateKeep, c.Audit.RotateEvery, want)
		}
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
		"auditrotate keep 3\n":                                   "t.conf:1: auditrotate: needs auditlog FILE",
		"auditlog a\nauditrotate\n":                              "t.conf:2: auditrotate: takes size BYTES, interval SECONDS and/or keep N",
		"auditlog a\nauditrotate size\n":                         "t.conf:2: auditrotate: takes size BYTES, interval SECONDS and/or keep N",
		"auditlog a\nauditrotate size 1048575\n":                 "t.conf:2: auditrotate size: must be 0 (never rotate) or a byte count 1048576..1099511627776, got \"1048575\"",
		"auditlog a\nauditrotate size 1099511627777\n":           "t.conf:2: auditrotate size: must be 0 (never rotate)",
		"auditlog a\nauditrotate size 64M\n":                     "t.conf:2: auditrotate size: must be 0 (never rotate)",
		"auditlog a\nauditrotate interval 59\n":                  "t.conf:2: auditrotate interval: must be 0 (never) or whole seconds 60..31622400 (86400: daily, at midnight UTC), got \"59\"",
		"auditlog a\nauditrotate interval daily\n":               "t.conf:2: auditrotate interval: must be 0 (never) or whole seconds",
		"auditlog a\nauditrotate size -1\n":                      "t.conf:2: auditrotate size: must be 0 (never rotate)",
		"auditlog a\nauditrotate keep -1\n":                      "t.conf:2: auditrotate keep: value must be an integer 0..100000, got \"-1\"",
		"auditlog a\nauditrotate keep 100001\n":                  "t.conf:2: auditrotate keep: value must be an integer 0..100000",
		"auditlog a\nauditrotate every 3\n":                      "t.conf:2: auditrotate: unknown option \"every\" (want size, interval or keep)",
		"auditlog a\nauditrotate keep 1\nauditrotate keep 2\n":   "t.conf:3: auditrotate: already set at line 2",
	} {
		_, err := Parse("t.conf", []byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
