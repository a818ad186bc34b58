package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/glebarez/go-sqlite" // the database/sql driver "sqlite" the server's store uses (modernc underneath)

	"gatehouse/models"
)

// stormWorkers is the refresh storm of issue 16: the SQLite readers are measured while this many
// workers refresh over HTTP.
const stormWorkers = 16

// Cell names of the SQLite section, as the table shows them.
const (
	cellRefreshSQLite = "POST /auth/refresh (HTTP, SQLite)"
	cellLimitSQLite   = "limit: SQLite rotation transaction"
	cellMeSQLite      = "GET /api/me (bearer, cached, SQLite)"
)

// startSQLiteInstance serves a SQLite file in the run's directory, the embedded default, after
// creating the accounts in it with the CLI (which migrates it).
func (b *bench) startSQLiteInstance(ctx context.Context, label string) (*instance, error) {
	path := filepath.Join(b.setup.dir, label+".db")
	b.log("SQLite file %s", path)
	inst := &instance{sqlitePath: path, setup: b.setup}
	inst.setup.databaseURL = "sqlite:" + path
	return b.serveInstance(ctx, inst)
}

// sqliteLimit is the SQLite limit of issue 16: the rotation-shaped transaction through the same
// driver as the server, with the server's pragmas (models.ParseDatabaseURL: WAL,
// synchronous=NORMAL, busy_timeout, BEGIN IMMEDIATE), on one connection, its statements prepared
// once: find the session by the presented token's history row, update it to the successor,
// record the successor in the history with an INSERT. No GORM, no access token: what the driver
// and the file allow. The limit's file has the server's schema less the trigger that records the
// history on the server (migration 0008), so that the limit stays the three statements
// whatever the server's schema does.
type sqliteLimit struct {
	path                 string
	db                   *sql.DB
	find, update, record *sql.Stmt
	direct               *direct // the service that signed the chains in, on the same file
	devices              []*device
}

// The limit's statements. find reads what the decision needs: the live token, the device, the
// lifetimes at now, the user's token_version and whether it is disabled.
const (
	sqliteLimitFind = `
SELECT s.id, s.device_id, s.token_hash, s.expires_at,
       s.revoked_at IS NULL AND s.token_expires_at > ?2 AND s.expires_at > ?2,
       u.token_version, u.disabled_at IS NULL
  FROM refresh_tokens t
  JOIN device_sessions s ON s.id = t.session_id
  JOIN users u ON u.id = s.user_id
 WHERE t.token_hash = ?1`
	sqliteLimitUpdate = `
UPDATE device_sessions
   SET prev_token_hash = token_hash, token_hash = ?1, rotated_at = ?2, token_expires_at = ?3,
       last_used_at = ?2, last_ip = ?4
 WHERE id = ?5 AND token_hash = ?6`
	sqliteLimitRecord = `INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)`
)

// openSQLiteLimit creates the limit's file in the run's directory: the accounts with the CLI (which
// migrates it), n chains signed in through an auth.Service on it, and the one connection with its
// prepared statements.
func (b *bench) openSQLiteLimit(ctx context.Context, n int) (*sqliteLimit, error) {
	path := filepath.Join(b.setup.dir, "limit.db")
	setup := b.setup
	setup.databaseURL = "sqlite:" + path
	if err := b.createAccounts(ctx, setup); err != nil {
		return nil, err
	}
	l := &sqliteLimit{path: path}
	var err error
	if l.direct, err = openDirect(setup.databaseURL, b.setup.keyDir, b.main.server.URL, b.cfg, nil); err != nil {
		return nil, err
	}
	if l.devices, err = l.direct.signInDevices(ctx, b.accounts, "bench-sqlite-limit", n); err != nil {
		l.close()
		return nil, err
	}
	if l.db, err = openSQLite(path); err != nil {
		l.close()
		return nil, err
	}
	_, err = l.db.ExecContext(ctx, `DROP TRIGGER IF EXISTS device_sessions_record_token`)
	if err == nil {
		l.find, err = l.db.PrepareContext(ctx, sqliteLimitFind)
	}
	if err == nil {
		l.update, err = l.db.PrepareContext(ctx, sqliteLimitUpdate)
	}
	if err == nil {
		l.record, err = l.db.PrepareContext(ctx, sqliteLimitRecord)
	}
	if err != nil {
		l.close()
		return nil, fmt.Errorf("prepare the SQLite limit: %w", err)
	}
	return l, nil
}

// openSQLite opens a SQLite file as the server does (models.ParseDatabaseURL's DSN), on one connection.
func openSQLite(path string) (*sql.DB, error) {
	_, dsn, err := models.ParseDatabaseURL("sqlite:" + path)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db, nil
}

func (l *sqliteLimit) close() {
	if l.db != nil {
		l.db.Close() // closes the prepared statements with it
	}
	if l.direct != nil {
		l.direct.close()
	}
}

// rotate is one rotation of dev's chain in one transaction. A token that is not its family's
// live token (or whose family is closed) is refused, as the PostgreSQL limit's statement refuses it.
func (l *sqliteLimit) rotate(ctx context.Context, dev *device) outcome {
	now := time.Now().UTC().Truncate(time.Microsecond)
	presented := dev.refresh
	next := l.direct.svc.SuccessorOf(presented)
	hash, nextHash := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(next))
	tx, err := l.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the DSN's _txlock
	if err != nil {
		return failed
	}
	defer tx.Rollback() // after Commit, a no-op
	var (
		sessionID, deviceID string
		liveHash            []byte
		expiresAt           time.Time
		live, userEnabled   bool
		tokenVersion        int64
	)
	err = tx.StmtContext(ctx, l.find).QueryRowContext(ctx, hash[:], now).
		Scan(&sessionID, &deviceID, &liveHash, &expiresAt, &live, &tokenVersion, &userEnabled)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		dev.refused(presented)
		return failed
	case err != nil:
		return failed
	case !bytes.Equal(liveHash, hash[:]) || !live || !userEnabled || deviceID != dev.id || tokenVersion < 1:
		dev.refused(presented)
		return failed
	}
	expiry := now.Add(l.direct.cfg.refreshIdleTTL) // capped by the session's absolute lifetime
	if expiresAt.Before(expiry) {
		expiry = expiresAt.UTC()
	}
	res, err := tx.StmtContext(ctx, l.update).ExecContext(ctx, nextHash[:], now, expiry, "127.0.0.1", sessionID, hash[:])
	if err != nil {
		return failed
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return failed
	}
	if _, err := tx.StmtContext(ctx, l.record).ExecContext(ctx, nextHash[:], sessionID, now, expiry); err != nil {
		return failed
	}
	if err := tx.Commit(); err != nil {
		return failed
	}
	dev.rotated(presented, next, "")
	return succeeded
}

// sqliteLimitOp: each worker rotates its own chain on the limit's file.
func (b *bench) sqliteLimitOp() op {
	return func(ctx context.Context, w, _ int) outcome {
		return b.sqliteLim.rotate(ctx, b.sqliteLim.devices[w])
	}
}

// sqliteVersion is sqlite_version() of the driver the server and the limit use.
func (l *sqliteLimit) sqliteVersion(ctx context.Context) string {
	var v string
	if err := l.db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return v
}

// Sides of the storm comparison, as its schedule names them.
const (
	sideMeAlone   = "GET /api/me alone"
	sideMeStorm   = "GET /api/me during the storm"
	sidePageAlone = "GET /devices alone"
	sidePageStorm = "GET /devices during the storm"
)

// storm is what the storm comparison measured.
type storm struct {
	readers int
	sides   map[string][]cell // every round's reader cell, by side
	storms  []cell            // the refresh storm's cells
	me      comparison        // p99 during the storm over p99 alone, per round
	page    comparison
}

// stormComparison measures GET /api/me (bearer) and GET /devices (valid access cookie) on the
// SQLite server with -storm-readers workers, alone and while stormWorkers workers refresh over
// HTTP, in -rounds rounds of duration/rounds: the four sides of a round, and the rounds, in an
// order drawn from the seed. The readers are page browsers, the storm's chains the refresh
// cells' own: they share nothing but the server and its file.
func (b *bench) stormComparison(ctx context.Context, r *report) error {
	inst, readers := b.sqlite, b.opts.stormReaders
	d := b.opts.duration / time.Duration(b.opts.rounds)
	st := &storm{readers: readers, sides: map[string][]cell{}, me: comparison{metric: p99Of, format: times}, page: comparison{metric: p99Of, format: times}}
	for i, rd := range schedule(b.rng, []int{readers}, b.opts.rounds, sideMeAlone, sideMeStorm, sidePageAlone, sidePageStorm) {
		b.log("SQLite readers and a refresh storm, round %d/%d: %s", i+1, b.opts.rounds, strings.Join(rd.cells, ", then "))
		res := map[string]cell{}
		for _, side := range rd.cells {
			failures := b.freshAccess(ctx, inst, readers)
			name, do := cellPageValidSQLite, pageValidOp(inst)
			if side == sideMeAlone || side == sideMeStorm {
				name, do = cellMeSQLite, func(ctx context.Context, w, _ int) outcome { return inst.api.me(ctx, inst.pageDevices[w].access) }
			}
			var refreshes cell
			done := make(chan struct{})
			if side == sideMeStorm || side == sidePageStorm {
				go func() {
					defer close(done)
					refreshes = b.warmThenDrive(ctx, cellRefreshSQLite, stormWorkers, d, inst.server, b.refreshOp(inst))
				}()
			} else {
				close(done)
			}
			c := b.warmThenDrive(ctx, name, readers, d, inst.server, do)
			<-done
			c.warmupErrors += failures
			b.logCell(c)
			if refreshes.name != "" {
				b.logCell(refreshes)
				st.storms = append(st.storms, refreshes)
			}
			res[side] = c
			st.sides[side] = append(st.sides[side], c)
		}
		st.me.repeats = append(st.me.repeats, pair{of: res[sideMeStorm], over: res[sideMeAlone]})
		st.page.repeats = append(st.page.repeats, pair{of: res[sidePageStorm], over: res[sidePageAlone]})
	}
	r.storm = st
	return nil
}

// sqliteChains is the fork check's view of a SQLite file: a connection as the server's.
func sqliteChains(path string, chains []*device) chainSet {
	return chainSet{name: path, chains: chains, open: func(context.Context) (querier, func(), error) {
		db, err := openSQLite(path)
		if err != nil {
			return nil, nil, err
		}
		q := func(ctx context.Context, query string, args ...any) rowScanner {
			return db.QueryRowContext(ctx, query, args...)
		}
		return q, func() { db.Close() }, nil
	}}
}

// The goals of issue 16 for the embedded default.
var (
	sqliteShareTarget = target{limit: 0.50, atLeast: true} // refresh over HTTP ≥ 50% of the SQLite limit at 16 workers
	sqliteP99Target   = 20 * time.Millisecond              // refresh p99 over HTTP at 16 workers under this
)

// printSQLite compares refresh over HTTP on SQLite with the rotation transaction, round by round,
// and gives the goals at stormWorkers (16) workers.
func (r *report) printSQLite(w io.Writer) {
	fmt.Fprintln(w, "\n## SQLite: refresh over HTTP as a share of the rotation transaction, per round")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workers | refresh over HTTP (SQLite) | limit: SQLite rotation transaction | HTTP / limit |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: |")
	for _, n := range slices.Sorted(maps.Keys(r.sqliteOverLimit)) {
		c := r.sqliteOverLimit[n]
		fmt.Fprintf(w, "| %d | %.0f/s | %.0f/s | %s |\n", n, merge(c.ofCells()).rate(), merge(c.overCells()).rate(), c.ratioText())
	}
	fmt.Fprintln(w, "\nThe limit: BEGIN IMMEDIATE; the session and its user found through the presented token's history row;")
	fmt.Fprintln(w, "UPDATE of the session to the successor; INSERT of the successor's history row; COMMIT, through the server's")
	fmt.Fprintln(w, "driver and pragmas on one connection, statements prepared once (the driver parses them again at every")
	fmt.Fprintln(w, "execution), from this process, on a file of its own without the server's history trigger.")
	c, ok := r.sqliteOverLimit[stormWorkers]
	if !ok {
		fmt.Fprintf(w, "\nGoals of issue 16 at %d workers on SQLite: no verdict, the run has no %d-worker cells.\n", stormWorkers, stormWorkers)
		return
	}
	fmt.Fprintf(w, "\nGoal of issue 16, refresh over HTTP on SQLite ≥ %s of the limit at %d workers in every round: %s.\n",
		percent(sqliteShareTarget.limit), stormWorkers, c.verdict(sqliteShareTarget))
	refresh := merge(c.ofCells())
	verdict := "not met"
	switch {
	case refresh.problems() != "":
		verdict = "verdict refused: " + refresh.problems()
	case refresh.ok == 0:
		verdict = "verdict refused: no successful request"
	case refresh.p99 < sqliteP99Target:
		verdict = "met"
	}
	fmt.Fprintf(w, "Goal of issue 16, its p99 at %d workers under %s (all rounds together): %s, %s.\n", stormWorkers, ms(sqliteP99Target), ms(refresh.p99), verdict)
}

// printStorm gives the SQLite readers alone and beside the refresh storm.
func (r *report) printStorm(w io.Writer) {
	st := r.storm
	if st == nil {
		return
	}
	fmt.Fprintf(w, "\n## SQLite: readers alone and while %d workers refresh over HTTP (%d readers, %d rounds)\n\n", stormWorkers, st.readers, len(st.me.repeats))
	var rows []cell
	for _, side := range []string{sideMeAlone, sideMeStorm, sidePageAlone, sidePageStorm} {
		c := merge(st.sides[side])
		if side == sideMeStorm || side == sidePageStorm {
			c.name += ", during the refresh storm"
		}
		rows = append(rows, c)
	}
	if len(st.storms) > 0 {
		s := merge(st.storms)
		s.name += ": the storm, beside the readers"
		rows = append(rows, s)
	}
	printCells(w, rows)
	fmt.Fprintf(w, "\np99 during the storm over p99 alone, per round: GET /api/me %s; GET /devices %s.\n", st.me.ratioText(), st.page.ratioText())
}
