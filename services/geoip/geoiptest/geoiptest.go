// Package geoiptest writes tiny MaxMind-format databases for tests, so that no test ships or needs
// a real GeoIP database.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Places of the test database, in the GeoLite2-City layout.
const (
	LisbonV4  = "192.0.2.0/24"    // Lisbon, Portugal
	IcelandV4 = "198.51.100.0/24" // Iceland (a country, no city)
	LisbonV6  = "2001:db8::/32"   // Lisbon, Portugal
)

// WriteCity writes a City database of type dbType into a temporary directory of t and returns its
// path: Lisbon for LisbonV4 and LisbonV6, only the country Iceland for IcelandV4.
func WriteCity(t testing.TB, dbType string) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	names := func(en string) mmdbtype.Map { return mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(en)}} }
	lisbon := mmdbtype.Map{"city": names("Lisbon"), "country": names("Portugal")}
	for _, c := range []struct {
		cidr   string
		record mmdbtype.Map
	}{
		{LisbonV4, lisbon},
		{IcelandV4, mmdbtype.Map{"country": names("Iceland")}},
		{LisbonV6, lisbon},
	} {
		_, network, err := net.ParseCIDR(c.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(network, c.record); err != nil {
			t.Fatalf("insert %s: %v", c.cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}
