package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/cmd/gatehouse/harness"
)

// database is the fresh PostgreSQL database of one run. A database rather than a schema keeps
// the server's LISTEN/NOTIFY revocation channel apart from anything else on the same server.
type database struct {
	adminURL string // the -database-url the bench was given
	name     string
	url      string            // adminURL pointing at the fresh database
	roles    *harness.Database // -pgbouncer: the database was made with roles of its own (dropped with it)
}

// createDatabase creates gatehouse_bench_<time>_<pid>_<label> next to adminURL's database.
func createDatabase(ctx context.Context, adminURL, label string) (*database, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("-database-url: %w", err)
	}
	name := fmt.Sprintf("gatehouse_bench_%d_%d_%s", time.Now().Unix(), os.Getpid(), label)
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return &database{adminURL: adminURL, name: name, url: u.String()}, nil
}

// drop removes the run's database, ending any connection still open to it.
func (d *database) drop(ctx context.Context) error {
	if d.roles != nil {
		return d.roles.Drop(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)")
	return err
}

// connect opens one plain connection to the run's database, for checks and seeding.
func (d *database) connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, d.url)
}

// verifyNoForks checks, at the end of the run, that the families agree with the clients that
// drove them. The schema holds a family's live token in one column of device_sessions, so
// counting live tokens could only ever find one: what can go wrong is a chain that forked, lost a
// rotation or took a refused token back. So, for every chain the bench drove (token rules 1, 3
// and 4): its family's history holds exactly 1 + (rotations its client saw) tokens, the client's
// last token is the family's live token, in a live family of the client's own device, and no
// token the server refused for good succeeded later. And every live family's token must be in
// its own history. Every database of the run is checked: the PostgreSQL ones and the SQLite
// server's and limit's files. A failure makes the bench exit 1.
func (b *bench) verifyNoForks(ctx context.Context, stdout io.Writer) error {
	sets := []chainSet{pgChains(b.main.db, slices.Concat(b.main.devices, b.directDevices, b.main.pageDevices))}
	for _, inst := range []*instance{b.unbatched, b.pooled, b.big} {
		if inst != nil {
			sets = append(sets, pgChains(inst.db, inst.devices))
		}
	}
	if b.sqlite != nil {
		sets = append(sets, sqliteChains(b.sqlite.sqlitePath, slices.Concat(b.sqlite.devices, b.sqlite.pageDevices)))
	}
	if b.sqliteLim != nil {
		sets = append(sets, sqliteChains(b.sqliteLim.path, b.sqliteLim.devices))
	}
	var problems []string
	var families, unrecorded, chains, refusals, revived int
	for _, set := range sets {
		f, u, p, err := set.check(ctx)
		if err != nil {
			return fmt.Errorf("fork check on %s: %w", set.name, err)
		}
		families, unrecorded, problems = families+f, unrecorded+u, append(problems, p...)
		chains += len(set.chains)
		for _, d := range set.chains {
			refusals, revived = refusals+len(d.declined), revived+d.revived
		}
	}
	fmt.Fprintln(stdout, "\n## Token chains at the end of the run")
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "- %d chains driven by the bench on %d databases (PostgreSQL and SQLite), each checked against its client: its family's history holds rotations + 1 tokens, and the client's last token is the family's live token, in a live family of its device.\n", chains, len(sets))
	fmt.Fprintf(stdout, "- %d refresh tokens refused for good during the run (each client kept presenting its refused token); %d of them accepted later.\n", refusals, revived)
	fmt.Fprintf(stdout, "- %d live families; %d of them have a live token missing from their own history.\n", families, unrecorded)
	if unrecorded > 0 {
		problems = append(problems, fmt.Sprintf("%d live families whose live token is missing from their history", unrecorded))
	}
	if len(problems) == 0 {
		fmt.Fprintln(stdout, "\nEvery chain agrees with its client.")
		return nil
	}
	fmt.Fprintf(stdout, "\n%d problems:\n", len(problems))
	for _, p := range problems {
		fmt.Fprintln(stdout, "  - "+p)
	}
	return fmt.Errorf("fork check failed: %d problems", len(problems))
}

// chainSet is the chains the bench drove on one database, and how to read that database.
type chainSet struct {
	name   string
	chains []*device
	open   func(ctx context.Context) (querier, func(), error) // a querier and how to close it
}

// querier runs a query that returns one row: pgx's QueryRow or database/sql's. The fork check's
// queries are written once for both ($n parameters, which SQLite's driver also binds by number).
type querier func(ctx context.Context, query string, args ...any) rowScanner

type rowScanner interface{ Scan(dest ...any) error }

// pgChains is the fork check's view of a PostgreSQL database: one plain connection.
func pgChains(db *database, chains []*device) chainSet {
	return chainSet{name: db.name, chains: chains, open: func(ctx context.Context) (querier, func(), error) {
		conn, err := db.connect(ctx)
		if err != nil {
			return nil, nil, err
		}
		q := func(ctx context.Context, query string, args ...any) rowScanner {
			return conn.QueryRow(ctx, query, args...)
		}
		return q, func() { conn.Close(context.Background()) }, nil
	}}
}

// check compares the set's chains with their families, and counts the live families and those
// whose live token is not in their history.
func (set chainSet) check(ctx context.Context) (families, unrecorded int, problems []string, err error) {
	query, closeDB, err := set.open(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	defer closeDB()
	err = query(ctx, `
		SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
		         SELECT 1 FROM refresh_tokens t WHERE t.session_id = s.id AND t.token_hash = s.token_hash))
		  FROM device_sessions s WHERE s.revoked_at IS NULL`).Scan(&families, &unrecorded)
	if err != nil {
		return 0, 0, nil, err
	}
	now := time.Now().UTC()
	for _, d := range set.chains {
		if p := checkChain(ctx, query, d, now); p != "" {
			problems = append(problems, p)
		}
		if d.revived > 0 {
			problems = append(problems, fmt.Sprintf("device %s: %d refresh tokens refused for good succeeded later", d.id, d.revived))
		}
	}
	return families, unrecorded, problems, nil
}

// checkChain compares one client's view of its chain with its family; "" when they agree.
func checkChain(ctx context.Context, query querier, d *device, now time.Time) string {
	hash := sha256.Sum256([]byte(d.refresh))
	var (
		deviceID string
		live     bool
		issued   int
	)
	err := query(ctx, `
		SELECT s.device_id, s.revoked_at IS NULL AND s.token_expires_at > $2,
		       (SELECT count(*) FROM refresh_tokens t WHERE t.session_id = s.id)
		  FROM device_sessions s WHERE s.token_hash = $1`, hash[:], now).Scan(&deviceID, &live, &issued)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows):
		return fmt.Sprintf("device %s: its last refresh token is no family's live token", d.id)
	case err != nil:
		return fmt.Sprintf("device %s: %v", d.id, err)
	case deviceID != d.id:
		return fmt.Sprintf("device %s: its token is live in device %s's family", d.id, deviceID)
	case !live:
		return fmt.Sprintf("device %s: its family is revoked or expired", d.id)
	case issued != d.rotations+1:
		return fmt.Sprintf("device %s: the family's history holds %d tokens, its client saw %d rotations (expected %d)", d.id, issued, d.rotations, d.rotations+1)
	}
	return ""
}

// seedUserID owns the synthetic families that -seed-tokens stores.
const seedUserID = "bench-seed-user"

// seedTokensTo adds synthetic families until refresh_tokens holds at least target rows. Each
// family has four tokens, one live and three rotated, like a device refreshed three times, with
// the server's lifetimes; the rows go in with COPY. It returns the number of rows afterwards.
func seedTokensTo(ctx context.Context, conn *pgx.Conn, target int, cfg serverConfig) (int, error) {
	var have, families int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM refresh_tokens), (SELECT count(*) FROM device_sessions WHERE user_id = $1)`,
		seedUserID).Scan(&have, &families); err != nil {
		return 0, err
	}
	if have >= target {
		return have, nil
	}
	const perFamily = 4
	add := (target - have + perFamily - 1) / perFamily
	now := time.Now().UTC()
	if _, err := conn.Exec(ctx, `INSERT INTO users (id, email, password_hash, created_at, updated_at)
		VALUES ($1, 'seed@bench.invalid', 'not a password hash', $2, $2) ON CONFLICT DO NOTHING`, seedUserID, now); err != nil {
		return 0, err
	}
	token := func(family, n int) []byte {
		h := sha256.Sum256(fmt.Appendf(nil, "bench seed %d/%d", family, n))
		return h[:]
	}
	first, last := families, families+add
	i := first
	sessions := pgx.CopyFromFunc(func() ([]any, error) {
		if i == last {
			return nil, nil
		}
		f := i
		i++
		rotated := now.Add(-time.Hour)
		return []any{fmt.Sprintf("seed-%d", f), seedUserID, fmt.Sprintf("seed-device-%d", f), "Seeded device",
			now, now, now.Add(cfg.sessionMaxAge), now, token(f, perFamily-1), now.Add(cfg.refreshIdleTTL), token(f, perFamily-2), rotated}, nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"device_sessions"}, []string{"id", "user_id", "device_id", "device_name",
		"created_at", "last_used_at", "expires_at", "authenticated_at", "token_hash", "token_expires_at", "prev_token_hash", "rotated_at"}, sessions); err != nil {
		return 0, fmt.Errorf("seed device_sessions: %w", err)
	}
	f, n := first, 0
	tokens := pgx.CopyFromFunc(func() ([]any, error) {
		if f == last {
			return nil, nil
		}
		row := []any{token(f, n), fmt.Sprintf("seed-%d", f), now.Add(-time.Duration(perFamily-n) * time.Hour), now.Add(cfg.refreshIdleTTL)}
		if n++; n == perFamily {
			f, n = f+1, 0
		}
		return row, nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"refresh_tokens"}, []string{"token_hash", "session_id", "issued_at", "expires_at"}, tokens); err != nil {
		return 0, fmt.Errorf("seed refresh_tokens: %w", err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE device_sessions, refresh_tokens"); err != nil {
		return 0, err
	}
	err := conn.QueryRow(ctx, "SELECT count(*) FROM refresh_tokens").Scan(&have)
	return have, err
}

// trimHistory deletes the rotated tokens of every family, keeping each one's live token, so that
// the small side of the size comparison starts small every time; the rotation counts of the
// clients of chains (the chains on this database) start again with it.
func trimHistory(ctx context.Context, conn *pgx.Conn, chains []*device) error {
	if _, err := conn.Exec(ctx, `DELETE FROM refresh_tokens t USING device_sessions s
		WHERE t.session_id = s.id AND t.token_hash <> s.token_hash`); err != nil {
		return fmt.Errorf("trim token history: %w", err)
	}
	for _, d := range chains {
		d.rotations = 0
	}
	return nil
}

// postgresVersion is SELECT version() on the run's database.
func postgresVersion(ctx context.Context, d *database) (string, error) {
	conn, err := d.connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var v string
	err = conn.QueryRow(ctx, "SELECT version()").Scan(&v)
	return v, err
}
