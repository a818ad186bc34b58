// Package models holds Gatehouse's persistence: the GORM structs, the queries on them, and the
// versioned migrations for PostgreSQL and the embedded SQLite default. It makes no decisions.
package models

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
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
	dialect, dsn, err := ParseDatabaseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	cfg := &gorm.Config{
		Logger:                 logger.Discard, // queries carry token hashes and password hashes: never log them
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	var db *gorm.DB
	switch dialect {
	case Postgres:
		db, err = openPostgres(dsn, cfg, opts)
	default:
		db, err = gorm.Open(sqlite.Open(dsn), cfg)
		if err == nil {
			err = limitPool(db, 1, 1)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return &Store{db: db, dialect: dialect}, nil
}

func openPostgres(dsn string, cfg *gorm.Config, opts Options) (*gorm.DB, error) {
	connConfig, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if opts.Dial != nil {
		connConfig.DialFunc = opts.Dial
	}
	// Statements are prepared once per connection and cached (pgx's default mode), so a
	// refresh is one round trip. A reused connection is pinged only after a long idle spell.
	sqlDB := stdlib.OpenDB(*connConfig, stdlib.OptionShouldPing(func(_ context.Context, p stdlib.ShouldPingParams) bool {
		return p.IdleDuration > 30*time.Second
	}))
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), cfg)
	if err != nil {
		return nil, err
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

// Close releases the pool.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
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

// lockClause is the row lock for reads that precede a write in the same transaction. SQLite has
// no row locks: its IMMEDIATE transactions already hold the one write lock.
func (s *Store) lockClause() string {
	if s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}
