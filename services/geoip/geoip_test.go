package geoip_test

import (
	"os"
	"path/filepath"
	"testing"

	"gatehouse/services/geoip"
	"gatehouse/services/geoip/geoiptest"
)

func TestLocate(t *testing.T) {
	l, err := geoip.Open(geoiptest.WriteCity(t, "GeoLite2-City"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for ip, want := range map[string]string{
		"192.0.2.17":           "Lisbon, Portugal",
		"::ffff:192.0.2.17":    "Lisbon, Portugal",
		"198.51.100.3":         "Iceland",
		"2001:db8::1":          "Lisbon, Portugal",
		"203.0.113.9":          "", // not in the database
		"":                     "",
		"not an address":       "",
		"192.0.2.17%eth0":      "",
		"10.0.0.1/8":           "",
		"\x00\xff\xfe garbage": "",
	} {
		if got := l.Locate(ip); got != want {
			t.Errorf("Locate(%q) = %q, want %q", ip, got, want)
		}
	}
	var none *geoip.Locator
	if got := none.Locate("192.0.2.17"); got != "" {
		t.Errorf("a nil Locator located %q", got)
	}
}

func TestOpenRefusesWhatIsNotAPlaceDatabase(t *testing.T) {
	if _, err := geoip.Open(geoiptest.WriteCity(t, "GeoLite2-ASN")); err == nil {
		t.Error("an ASN database was accepted")
	}
	junk := filepath.Join(t.TempDir(), "junk.mmdb")
	if err := os.WriteFile(junk, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := geoip.Open(junk); err == nil {
		t.Error("a junk file was accepted")
	}
	if _, err := geoip.Open(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("a missing file was accepted")
	}
}
