package harness

import (
	"strings"
	"testing"
)

// The harness changes only the [databases] entries and the settings it is given: in place where
// the template has them, at the end of [pgbouncer] where it does not; comments stay.
func TestRewriteIni(t *testing.T) {
	template := `; a comment
[databases]
; which database
gatehouse = host=127.0.0.1 port=5432 dbname=gatehouse
other = host=elsewhere

[pgbouncer]
listen_port = 6432
; pooling
pool_mode = transaction
auth_file = /etc/pgbouncer/userlist.txt
`
	got := rewriteIni(template, "gatehouse = host=10.0.0.1 port=5433 dbname=run", map[string]string{
		"listen_port": "40001", "auth_file": "/tmp/x/users.txt", "logfile": "", "pidfile": "",
	})
	want := `; a comment
[databases]
gatehouse = host=10.0.0.1 port=5433 dbname=run
; which database

[pgbouncer]
listen_port = 40001
; pooling
pool_mode = transaction
auth_file = /tmp/x/users.txt
logfile = 
pidfile = 
`
	if got != want {
		t.Errorf("rewriteIni:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "other =") {
		t.Errorf("an entry of [databases] survived")
	}
}
