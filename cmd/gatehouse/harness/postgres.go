package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database is a fresh PostgreSQL database for one run, owned by a login role of its own with a
// password, as a deployment has: PgBouncer (StartPgBouncer) authenticates that role against the
// server the way docs/deploy/pgbouncer.ini says, through pgbouncer.get_auth, which AuthUser may
// call. A database rather than a schema keeps the run's LISTEN/NOTIFY channels apart from
// everything else on the server, and needs no search_path, a startup parameter PgBouncer refuses.
type Database struct {
	Name     string // also the name of the role that owns it
	User     string
	Password string
	AuthUser string // the role PgBouncer's auth_query runs as
	URL      string // a direct connection as User: postgres://User:Password@host:port/Name?…
	Host     string // the server's host and port, for PgBouncer's [databases] line
	Port     string

	adminURL string
}

// AuthSetupSQL is the auth_query set-up that docs/deploy/pgbouncer.ini shows, word for word
// (TestPgBouncerConfigShowsItsSetup keeps them the same), with pgbouncer_auth for the AuthUser.
const AuthSetupSQL = `CREATE SCHEMA pgbouncer;
CREATE FUNCTION pgbouncer.get_auth(p_usename text) RETURNS TABLE (usename name, passwd text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT usename, passwd FROM pg_shadow WHERE usename = p_usename $$;
REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgbouncer TO pgbouncer_auth;
GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO pgbouncer_auth;`

// AuthSetup is the SQL that prepares a database for PgBouncer's auth_query, with authUser as
// the role that runs it.
func AuthSetup(authUser string) string {
	return strings.ReplaceAll(AuthSetupSQL, "pgbouncer_auth", pgx.Identifier{authUser}.Sanitize())
}

// CreateDatabase creates, through adminURL (a superuser, e.g. the tests' GATEHOUSE_TEST_POSTGRES),
// two roles and a database named prefix_<random>, and prepares it for PgBouncer. Drop removes
// all three.
func CreateDatabase(ctx context.Context, adminURL, prefix string) (*Database, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("admin URL: %w", err)
	}
	suffix := make([]byte, 6)
	password := make([]byte, 18)
	if _, err := rand.Read(suffix); err != nil {
		return nil, err
	}
	if _, err := rand.Read(password); err != nil {
		return nil, err
	}
	name := prefix + "_" + hex.EncodeToString(suffix)
	d := &Database{Name: name, User: name, Password: hex.EncodeToString(password), AuthUser: name + "_auth",
		Host: u.Hostname(), Port: u.Port(), adminURL: adminURL}
	if d.Port == "" {
		d.Port = "5432"
	}
	direct := *u
	direct.User = url.UserPassword(d.User, d.Password)
	direct.Path = "/" + name
	d.URL = direct.String()

	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	defer admin.Close(context.Background())
	for _, stmt := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgx.Identifier{d.User}.Sanitize(), d.Password),
		fmt.Sprintf("CREATE ROLE %s LOGIN", pgx.Identifier{d.AuthUser}.Sanitize()),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{d.User}.Sanitize()),
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			d.Drop(context.Background())
			return nil, fmt.Errorf("create database %s: %w", name, err)
		}
	}
	inside := *u
	inside.Path = "/" + name
	conn, err := pgx.Connect(ctx, inside.String())
	if err == nil {
		_, err = conn.Exec(ctx, AuthSetup(d.AuthUser))
		conn.Close(context.Background())
	}
	if err != nil {
		d.Drop(context.Background())
		return nil, fmt.Errorf("prepare database %s for PgBouncer: %w", name, err)
	}
	return d, nil
}

// Drop removes the database, ending the connections still open to it, and its roles.
func (d *Database) Drop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, d.adminURL)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	for _, stmt := range []string{
		"DROP DATABASE IF EXISTS " + pgx.Identifier{d.Name}.Sanitize() + " WITH (FORCE)",
		"DROP ROLE IF EXISTS " + pgx.Identifier{d.User}.Sanitize(),
		"DROP ROLE IF EXISTS " + pgx.Identifier{d.AuthUser}.Sanitize(),
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("drop database %s: %w", d.Name, err)
		}
	}
	return nil
}
