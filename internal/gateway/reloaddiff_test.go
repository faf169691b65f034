package gateway

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"timegate/internal/config"
)

// reloadHandling says, for every field of config.Config, what a reload does
// with it: "reload" (applied), "-" (not a setting), or the directive whose
// change notApplied reports (restart-only). A field added to Config without
// an entry fails TestReloadHandlesEveryField: a reload must never ignore a
// changed line silently.
var reloadHandling = map[string]string{
	"File":              "-",
	"Positions":         "-",
	"Warnings":          "-",
	"Port":              "port",
	"NTSPort":           "ntsport",
	"NTPWorkers":        "ntpworkers",
	"NTPRcvBuf":         "ntprcvbuf",
	"NTSKENice":         "ntskenice",
	"NTSKEIdle":         "ntskenice",
	"BindAddresses":     "bindaddress",
	"Local":             "local",
	"Leap":              "leapsecmode smoothtime smoothport (leapfile, leapsectz, smoothallow: reload)",
	"KeyFile":           "reload",
	"NTSServerCert":     "ntsservercert",
	"NTSServerKey":      "ntsservercert",
	"NTSTrustedCerts":   "ntstrustedcerts",
	"NoSystemCert":      "nosystemcert",
	"NTSAEADs":          "ntsaeads",
	"NTSDumpDir":        "ntsdumpdir",
	"NTSRotate":         "ntsrotate",
	"NTSNTPServer":      "ntsntpserver",
	"NTSNTPPort":        "ntsntpserver",
	"NTSKeyStore":       "ntskeystore",
	"MaxNTSConnections": "maxntsconnections",
	"NTSProcesses":      "ntsprocesses",
	"RateLimit":         "reload",
	"NTSRateLimit":      "reload",
	"ClientLogLimit":    "reload",
	"Sources":           "reload",
	"MinSources":        "reload",
	"MaxDistance":       "reload",
	"AuthSelectMode":    "reload",
	"Holdover":          "holdover",
	"MaxStartOffset":    "maxstartoffset",
	"MaxChange":         "maxchange",
	"CMACOnly":          "reload",
	"PIDFile":           "pidfile",
	"DriftFile":         "driftfile",
	"DumpDir":           "dumpdir",
	"LogDir":            "logdir",
	"Log":               "log",
	"MakeStep":          "makestep",
	"TxLead":            "txlead",
	"ClockControl":      "clockcontrol",
	"Restrict":          "reload",
	"ControlSocket":     "bindcmdaddress",
	"ControlOff":        "bindcmdaddress",
	"User":              "user",
	"ControlGroup":      "cmdgroup",
	"Metrics":           "metrics",
	"Audit":             "auditlog (auditrotate: reload)",
	"TrustedKeys":       "reload",
}

// TestReloadHandlesEveryField: every field of the configuration is either
// applied by a reload or reported by notApplied when it changes. Fields of
// a plain kind are changed one at a time and the report checked; the
// structured ones (Leap, Audit, Log, MakeStep, Metrics) have their own
// tests.
func TestReloadHandlesEveryField(t *testing.T) {
	old, err := config.Parse("t.conf", []byte("port 123\n"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range restartOnly() {
		names = append(names, d.directive)
	}
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		how, ok := reloadHandling[f.Name]
		if !ok {
			t.Errorf("config.Config.%s: not classified (reloadHandling): does a reload apply it, or say it needs a restart?", f.Name)
			continue
		}
		if how == "-" || how == "reload" {
			continue
		}
		directive := strings.Fields(how)[0]
		if !slices.Contains(names, directive) {
			t.Errorf("config.Config.%s: restart-only directive %q missing from restartOnly()", f.Name, directive)
			continue
		}
		cur := *old
		if !mutate(reflect.ValueOf(&cur).Elem().Field(i)) {
			continue // a struct: see the doc comment
		}
		w := notApplied(old, &cur)
		if len(w) != 1 || !strings.Contains(w[0], " "+directive+" changed") {
			t.Errorf("config.Config.%s changed: reload warnings %q, want one naming %s", f.Name, w, directive)
		}
	}
}

// mutate changes v to another value of its type, reporting false for kinds
// it does not change.
func mutate(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		} else {
			v.SetZero()
		}
	default:
		return false
	}
	return true
}
