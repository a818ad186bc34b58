// Package models holds Gatehouse's persistence: the GORM structs, the queries on them, and the
// versioned migrations for PostgreSQL and the embedded SQLite default. It makes no decisions.
package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database behind a Store.
type Dialect string

// The two databases Gatehouse runs on.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Store is the database handle every query hangs off. Inside InTx it is bound to the transaction.
type Store struct {
	db      *gorm.DB
	dialect Dialect
	// reads, on SQLite outside a transaction, are read-only connections beside the one writer:
	// in WAL mode they read the last commit while the writer writes, so that page loads and
	// access checks do not queue behind refreshes. nil on PostgreSQL (one pool does both), for
	// an in-memory database, and inside a transaction (everything goes to the transaction).
	reads *gorm.DB
}

// Options tune how Open connects. The zero value is right for serving.
type Options struct {
	// MaxOpenConns bounds the PostgreSQL pool (default 16). SQLite always uses one connection.
	MaxOpenConns int
	// Dial, when set, opens PostgreSQL connections (tests wrap it to count round trips).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Open connects to DATABASE_URL: a postgres:// URL or sqlite:PATH.
func Open(databaseURL string, opts Options) (*Store, error) {
	return OpenContext(context.Background(), databaseURL, opts)
}

// OpenContext is Open with a context that bounds the first PostgreSQL connection. When the server
// cannot be reached (refused, timed out, starting up), the error wraps ErrUnavailable, so that a
// caller can wait for it; a wrong password or a missing database is any other error.
func OpenContext(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	dialect, dsn, err := ParseDatabaseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	if dialect == Postgres {
		db, err := openPostgres(ctx, dsn, gormConfig(), opts)
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return &Store{db: db, dialect: dialect}, nil
	}
	s, err := openSQLite(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return s, nil
}

// gormConfig is GORM's configuration of one pool (gorm.Open keeps the pool in it, so each pool
// needs its own). TranslateError stays off: translate classifies every error by the drivers'
// codes, including those of statements run on the pool directly and of lost connections, which
// GORM's translators do not see or know (errors.go).
func gormConfig() *gorm.Config {
	return &gorm.Config{
		Logger:                 logger.Discard, // queries carry token hashes and password hashes: never log them
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
}

// sqliteReaders is the number of read-only SQLite connections: enough for every core to read
// while the writer writes.
var sqliteReaders = max(4, runtime.GOMAXPROCS(0))

// openSQLite opens the one writer connection (SQLite allows one writer at a time; queueing in
// the pool is cheaper than SQLITE_BUSY) and, for a database in a file, a pool of read-only ones.
func openSQLite(dsn string) (*Store, error) {
	if err := restrictSQLiteFile(dsn); err != nil {
		return nil, err
	}
	db, err := gorm.Open(sqlite.Open(dsn), gormConfig())
	if err == nil {
		err = limitPool(db, 1, 1)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, dialect: SQLite}
	if path, _ := sqliteFile(dsn); path == "" {
		return s, nil // each connection to an in-memory database would see a database of its own
	}
	// query_only comes last, after the pragmas the writer already applied to the file (WAL is
	// kept in the file: setting it again writes nothing).
	reads, err := gorm.Open(sqlite.Open(dsn+"&_pragma=query_only(1)"), gormConfig())
	if err == nil {
		err = limitPool(reads, sqliteReaders, sqliteReaders)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("read-only connections: %w", err)
	}
	s.reads = reads
	return s, nil
}

func openPostgres(ctx context.Context, dsn string, cfg *gorm.Config, opts Options) (*gorm.DB, error) {
	connConfig, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if opts.Dial != nil {
		connConfig.DialFunc = opts.Dial
	}
	// Statements go as the URL's default_query_exec_mode says (GATEHOUSE_PG_STATEMENTS sets it,
	// WithStatements): by default prepared once per connection and cached, so a refresh is one
	// round trip; behind a transaction pooler, "exec" sends each one unnamed, also in one round
	// trip. A reused connection is pinged only after a long idle spell.
	sqlDB := stdlib.OpenDB(*connConfig, stdlib.OptionShouldPing(func(_ context.Context, p stdlib.ShouldPingParams) bool {
		return p.IdleDuration > 30*time.Second
	}))
	// The first connection is made here, under ctx, rather than by gorm.Open's ping, which
	// cannot be cancelled.
	cfg.DisableAutomaticPing = true
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), cfg)
	if err == nil {
		err = sqlDB.PingContext(ctx)
	}
	if err != nil {
		sqlDB.Close()
		// A server that refused, did not answer in time, or is starting up wraps ErrUnavailable
		// (translate's classes); a cancelled ctx, a wrong password or a missing database does not.
		return nil, translate(err)
	}
	size := opts.MaxOpenConns
	if size <= 0 {
		size = 16
	}
	return db, limitPool(db, size, size)
}

func limitPool(db *gorm.DB, open, idle int) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	sqlDB.SetMaxOpenConns(open)
	sqlDB.SetMaxIdleConns(idle)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return nil
}

// ParseDatabaseURL splits DATABASE_URL into a dialect and a driver DSN. For SQLite it turns on
// WAL, a busy timeout, foreign keys and IMMEDIATE transactions, so that writers queue instead of failing.
func ParseDatabaseURL(raw string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", fmt.Errorf("DATABASE_URL is not a valid URL")
		}
		return Postgres, raw, nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(raw, "sqlite:")
		if path == "" {
			return "", "", fmt.Errorf("DATABASE_URL sqlite: needs a file path, as in sqlite:gatehouse.db")
		}
		path = strings.TrimPrefix(path, "//")
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		return SQLite, path + sep + "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate", nil
	default:
		return "", "", fmt.Errorf("DATABASE_URL must start with postgres:// or sqlite:, got %q", redactURL(raw))
	}
}

// StatementModes are the values of GATEHOUSE_PG_STATEMENTS, each with the pgx query execution
// mode it names (pgx's default_query_exec_mode). Behind PgBouncer in transaction mode before
// 1.21, only the modes that name no prepared statement across round trips work: describe, exec
// and simple (README, "Behind PgBouncer"; BENCHMARKS.md measures them).
var StatementModes = []struct{ Name, PgxMode string }{
	{"cache", "cache_statement"},   // prepared once per connection, named: the fastest, direct only
	{"describe", "cache_describe"}, // unnamed; types described once per connection and cached
	{"exec", "exec"},               // unnamed, parameter types from Go types: one round trip
	{"simple", "simple_protocol"},  // the simple protocol, parameters quoted by pgx
}

// WithStatements returns DATABASE_URL set to send statements in mode (one of StatementModes'
// names) through pgx's default_query_exec_mode parameter, which every command's connection reads.
// "" leaves the URL as it is. A URL that already names another mode is an error, as is a mode for
// SQLite.
func WithStatements(databaseURL, mode string) (string, error) {
	if mode == "" {
		return databaseURL, nil
	}
	pgxMode := ""
	var names []string
	for _, m := range StatementModes {
		names = append(names, m.Name)
		if m.Name == mode {
			pgxMode = m.PgxMode
		}
	}
	if pgxMode == "" {
		return databaseURL, fmt.Errorf("%q is not one of %s", mode, strings.Join(names, ", "))
	}
	dialect, _, err := ParseDatabaseURL(databaseURL)
	if err != nil || dialect != Postgres {
		return databaseURL, fmt.Errorf("it applies to PostgreSQL only, and DATABASE_URL is not a postgres:// URL")
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return databaseURL, fmt.Errorf("DATABASE_URL is not a valid URL")
	}
	q := u.Query()
	if given := q.Get("default_query_exec_mode"); given != "" && given != pgxMode {
		return databaseURL, fmt.Errorf("%q disagrees with DATABASE_URL's default_query_exec_mode=%s; set one of them", mode, given)
	}
	q.Set("default_query_exec_mode", pgxMode)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// restrictSQLiteFile keeps the SQLite database, which holds password hashes, to its owner (mode
// 0600, like the signing keys). SQLite creates a new database with mode 0644 less the umask, and
// its -wal, -shm and -journal files with the mode of the database file. So a missing database is
// created empty with 0600 here, before SQLite opens it, and those files follow. An existing one
// that others may read (made by an earlier version, or by hand) is restricted to its owner, with
// any -wal, -shm or -journal a crash left; when that chmod fails, Open fails rather than serve
// from a file anyone on the machine can read. In-memory databases name no file: nothing to do.
func restrictSQLiteFile(dsn string) error {
	path, mayCreate := sqliteFile(dsn)
	if path == "" {
		return nil
	}
	if mayCreate {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			err = f.Chmod(0o600) // exactly 0600, whatever the umask
			if closeErr := f.Close(); err == nil {
				err = closeErr
			}
			if err != nil {
				return fmt.Errorf("create database file %s: %w", path, err)
			}
			return nil
		case !errors.Is(err, os.ErrExist):
			return fmt.Errorf("create database file %s: %w", path, err)
		}
	}
	for _, name := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		info, err := os.Stat(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("database file %s: %w", name, err)
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(name, perm&^0o077); err != nil {
				return fmt.Errorf("database file %s is open to other users (mode %04o) and could not be restricted to its owner: %w", name, perm, err)
			}
		}
	}
	return nil
}

// sqliteFile is the file a SQLite DSN from ParseDatabaseURL opens, read as the driver and SQLite
// read it: a plain name ends at its first "?" (the driver's parameters follow); a "file:" URI has
// a percent-encoded path, an optional "//" authority, and SQLite's own parameters. It is "" for
// an in-memory database. mayCreate is false when the URI's mode forbids creating the file.
func sqliteFile(dsn string) (path string, mayCreate bool) {
	name, query := dsn, ""
	if i := strings.IndexByte(dsn, '?'); i >= 1 { // the driver's rule: a leading "?" is part of the name
		name, query = dsn[:i], dsn[i+1:]
	}
	params, _ := url.ParseQuery(query) // what it cannot parse, the driver refuses on open
	if params.Get("vfs") == "memdb" {
		return "", false
	}
	mayCreate = true
	if rest, ok := strings.CutPrefix(name, "file:"); ok {
		rest, _, _ = strings.Cut(rest, "#")
		if afterSlashes, ok := strings.CutPrefix(rest, "//"); ok {
			authority, p, found := strings.Cut(afterSlashes, "/")
			if !found || (authority != "" && authority != "localhost") {
				return "", false // SQLite refuses it on open
			}
			rest = "/" + p
		}
		var err error
		if name, err = url.PathUnescape(rest); err != nil {
			return "", false // SQLite refuses it on open
		}
		switch params.Get("mode") {
		case "memory":
			return "", false
		case "ro", "rw":
			mayCreate = false
		}
	}
	if name == "" || name == ":memory:" {
		return "", false
	}
	return name, mayCreate
}

// redactURL keeps a password out of error messages.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return raw
}

// Dialect tells which database this store talks to.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB exposes the GORM handle to tests and tools that work below the store (the benchmark's limit).
func (s *Store) DB() *gorm.DB { return s.db }

// SQL returns the pool, for pool statistics and closing.
func (s *Store) SQL() (*sql.DB, error) { return s.db.DB() }

// Close releases the pool, and the read-only connections of SQLite.
func (s *Store) Close() error {
	var errs []error
	for _, db := range []*gorm.DB{s.reads, s.db} {
		if db == nil {
			continue
		}
		sqlDB, err := db.DB()
		if err == nil {
			err = sqlDB.Close()
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return translate(sqlDB.PingContext(ctx))
}

// InTx runs fn in one transaction: committed when fn returns nil, rolled back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(&Store{db: tx, dialect: s.dialect})
	})
	return translate(err)
}

func (s *Store) with(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// read is where a query that only reads goes: on SQLite outside a transaction, the read-only
// connections (see Store.reads); anywhere else, where with goes.
func (s *Store) read(ctx context.Context) *gorm.DB {
	if s.reads != nil {
		return s.reads.WithContext(ctx)
	}
	return s.with(ctx)
}

// lockClause is the row lock for reads that precede a write in the same transaction. SQLite has
// no row locks: its IMMEDIATE transactions already hold the one write lock.
//
// On PostgreSQL it is FOR NO KEY UPDATE, not FOR UPDATE: it conflicts with itself and with every
// UPDATE of the row, but not with the FOR KEY SHARE that a foreign-key check takes on the row it
// references. FOR UPDATE would make any transaction inserting a row that references the locked
// one (a security event or a session, for a user) wait for us, and deadlock if we in turn wait
// for a row it already holds (see TestLockUserDoesNotDeadlockWithForeignKeyChecks).
func (s *Store) lockClause() string {
	if s.dialect == Postgres {
		return " FOR NO KEY UPDATE"
	}
	return ""
}
