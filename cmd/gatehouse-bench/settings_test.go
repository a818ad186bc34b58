package main

import "testing"

// The bench reads the server's defaults from `gatehouse serve --help`, in the form config.go
// prints them.
func TestParseHelpDefaults(t *testing.T) {
	help := []byte(`Usage: gatehouse serve [flags]

Flags:
  -access-ttl string
    	access token lifetime (env GATEHOUSE_ACCESS_TTL, default "10m")
  -base-url string
    	the portal's public URL (default http:// + the address) (env GATEHOUSE_BASE_URL, default "")
  -odd string
    	a value with a quote (env GATEHOUSE_ODD, default "a \"b\"")
`)
	got, err := parseHelpDefaults(help)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"GATEHOUSE_ACCESS_TTL": "10m", "GATEHOUSE_BASE_URL": "", "GATEHOUSE_ODD": `a "b"`}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
