package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// database is the fresh PostgreSQL database of one run. A database rather than a schema keeps
// the server's LISTEN/NOTIFY revocation channel apart from anything else on the same server.
type database struct {
	adminURL string // the -database-url the bench was given
	name     string
	url      string // adminURL pointing at the fresh database
}

func createDatabase(ctx context.Context, adminURL string) (*database, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("-database-url: %w", err)
	}
	name := fmt.Sprintf("gatehouse_bench_%d_%d", time.Now().Unix(), os.Getpid())
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

// verifyNoForks checks token rule 4 at the end of the run. The schema holds a family's live token
// in one column, so the database alone cannot show two; what can fail is the agreement with the
// clients: every chain the bench drove must end at its family's live token, the family must be
// live, and it must have issued exactly 1 + (rotations its client saw) tokens. A fork, a lost
// rotation or a rotation counted twice breaks that count.
func (b *bench) verifyNoForks(ctx context.Context, stdout io.Writer) error {
	conn, err := b.db.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var families, unrecorded int
	err = conn.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
		         SELECT 1 FROM refresh_tokens t WHERE t.session_id = s.id AND t.token_hash = s.token_hash))
		  FROM device_sessions s WHERE s.revoked_at IS NULL`).Scan(&families, &unrecorded)
	if err != nil {
		return fmt.Errorf("fork check: %w", err)
	}
	var problems []string
	if unrecorded > 0 {
		problems = append(problems, fmt.Sprintf("%d live families whose live token is missing from their history", unrecorded))
	}
	chains := append(append([]*device{}, b.httpDevices...), b.directDevices...)
	for _, d := range chains {
		if p := checkChain(ctx, conn, d); p != "" {
			problems = append(problems, p)
		}
	}
	fmt.Fprintf(stdout, "\nNo forks: %d live families, each with exactly one live token; %d driven chains checked against their clients: ",
		families, len(chains))
	if len(problems) == 0 {
		fmt.Fprintln(stdout, "all agree.")
		return nil
	}
	fmt.Fprintf(stdout, "%d problems.\n", len(problems))
	for _, p := range problems {
		fmt.Fprintln(stdout, "  - "+p)
	}
	return fmt.Errorf("fork check failed: %d problems", len(problems))
}

// checkChain compares one client's view of its chain with its family; "" when they agree.
func checkChain(ctx context.Context, conn *pgx.Conn, d *device) string {
	hash := sha256.Sum256([]byte(d.refresh))
	var (
		deviceID string
		live     bool
		issued   int
	)
	err := conn.QueryRow(ctx, `
		SELECT s.device_id, s.revoked_at IS NULL AND s.token_expires_at > now(),
		       (SELECT count(*) FROM refresh_tokens t WHERE t.session_id = s.id)
		  FROM device_sessions s WHERE s.token_hash = $1`, hash[:]).Scan(&deviceID, &live, &issued)
	switch {
	case err == pgx.ErrNoRows:
		return fmt.Sprintf("device %s: its last refresh token is no family's live token", d.id)
	case err != nil:
		return fmt.Sprintf("device %s: %v", d.id, err)
	case deviceID != d.id:
		return fmt.Sprintf("device %s: its token is live in device %s's family", d.id, deviceID)
	case !live:
		return fmt.Sprintf("device %s: its family is revoked or expired", d.id)
	case issued != d.rotations+1:
		return fmt.Sprintf("device %s: the family issued %d tokens, its client saw %d rotations", d.id, issued, d.rotations)
	}
	return ""
}

// seedUserID owns the synthetic families that -seed-tokens stores.
const seedUserID = "bench-seed-user"

// seedTokensTo adds synthetic families until refresh_tokens holds at least target rows. Each
// family has four tokens, one live and three rotated, like a device refreshed three times; the
// rows go in with COPY. It returns the number of rows afterwards.
func seedTokensTo(ctx context.Context, conn *pgx.Conn, target int) (int, error) {
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
			now, now, now.Add(720 * time.Hour), now, token(f, perFamily-1), now.Add(336 * time.Hour), token(f, perFamily-2), rotated}, nil
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
		row := []any{token(f, n), fmt.Sprintf("seed-%d", f), now.Add(-time.Duration(perFamily-n) * time.Hour), now.Add(336 * time.Hour)}
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
// the seed comparison starts small; the clients' rotation counts start again with it.
func (b *bench) trimHistory(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `DELETE FROM refresh_tokens t USING device_sessions s
		WHERE t.session_id = s.id AND t.token_hash <> s.token_hash`); err != nil {
		return fmt.Errorf("trim token history: %w", err)
	}
	for _, d := range append(append([]*device{}, b.httpDevices...), b.directDevices...) {
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
