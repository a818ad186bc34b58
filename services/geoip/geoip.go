// Package geoip finds the approximate place of an IP address in a MaxMind-format database
// (GATEHOUSE_GEOIP_DB: the free GeoLite2 City or DB-IP Lite City files people already use), so that
// "Your devices", session details and sign-in notices can say "Lisbon, Portugal".
package geoip

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Locator answers lookups from one database file, read once into memory (mapped).
type Locator struct {
	db *maxminddb.Reader
}

// Open reads a .mmdb file; a file that is not one is an error at start, not at the first lookup.
func Open(path string) (*Locator, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open GeoIP database %s: %w", path, err)
	}
	if t := db.Metadata.DatabaseType; !strings.Contains(strings.ToLower(t), "city") && !strings.Contains(strings.ToLower(t), "country") {
		_ = db.Close()
		return nil, fmt.Errorf("GeoIP database %s is a %q database; use a City or Country one (GeoLite2-City, DB-IP Lite City)", path, t)
	}
	return &Locator{db: db}, nil
}

// place is the part of a City or Country record we show: the names in English.
type place struct {
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	Country struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
}

// Locate says where ip is, as "City, Country", "Country", or "" when the database does not know
// (private and loopback addresses, unknown ranges, anything that is not an address). A nil
// Locator knows nothing, so callers need no check.
func (l *Locator) Locate(ip string) string {
	if l == nil {
		return ""
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	var p place
	if err := l.db.Lookup(addr.Unmap()).Decode(&p); err != nil {
		return ""
	}
	city, country := p.City.Names["en"], p.Country.Names["en"]
	switch {
	case city != "" && country != "":
		return city + ", " + country
	case country != "":
		return country
	}
	return city
}

// Close releases the database.
func (l *Locator) Close() error {
	if l == nil {
		return nil
	}
	return l.db.Close()
}
