package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors the models boundary translates database errors into. translate wraps the driver's error
// in them, so errors.As still finds the *pgconn.PgError or *sqlite.Error underneath (for the log).
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("database unavailable")
)

// translate classifies a database error, once, at the models boundary, by the drivers' codes and
// error values (never by message text), and wraps it with %w in the sentinel that says what a
// caller can do about it:
//
//	ErrNotFound     gorm.ErrRecordNotFound, sql.ErrNoRows
//	ErrConflict     PostgreSQL 23505 unique_violation;
//	                SQLite SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
//	ErrUnavailable  waiting may cure it (handlers answer 503 with Retry-After):
//	                PostgreSQL class 08 connection_exception, 40001 serialization_failure,
//	                40P01 deadlock_detected, 53300 too_many_connections, 57014 query_canceled
//	                (a statement_timeout), 57P01 admin_shutdown, 57P02 crash_shutdown,
//	                57P03 cannot_connect_now, 57P05 idle_session_timeout;
//	                SQLite SQLITE_BUSY and SQLITE_LOCKED (with any extended code);
//	                a network error, a connection that ended (io.EOF, io.ErrUnexpectedEOF,
//	                driver.ErrBadConn, pgconn.ErrConnClosed), and context.DeadlineExceeded.
//
// A deadline that passes while a query runs, or waits for a lock or a connection, means the
// database did not answer in time: like a server that is away, that is ErrUnavailable (a 503),
// not an unknown error (a 500). translate names it, though as a net.Error connectionLost would
// catch it too. A cancelled context (context.Canceled) is returned as it is: the caller gave up,
// and that says nothing about the database. A serialization failure or a deadlock is unavailable,
// not a conflict: the transaction can succeed when retried, while ErrConflict tells the caller
// that the row it wrote already exists (CreateUser's "email taken"). Any other error (a
// foreign-key or NOT NULL violation, a wrong password, a missing database) is a bug or a
// misconfiguration that waiting does not cure, and is returned as it is.
//
// gorm.Config.TranslateError stays off (see OpenContext): GORM's SQLite translator replaces the
// driver's error with a bare gorm.ErrDuplicatedKey, which would hide its code from errors.As here
// and from the log.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if sentinel, coded := classifyCode(err); coded {
		if sentinel == nil {
			return err
		}
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	if connectionLost(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// classifyCode maps the code of a PostgreSQL or SQLite error onto a sentinel (nil for any other
// code); coded is false when err carries no such code. A coded error is the database's answer, so
// translate does not go on to connectionLost with it: a wrong password, say, arrives inside a
// *pgconn.ConnectError, and waiting does not cure it.
func classifyCode(err error) (sentinel error, coded bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == "23505":
			return ErrConflict, true
		case strings.HasPrefix(code, "08"), code == "40001", code == "40P01", code == "53300", code == "57014",
			code == "57P01", code == "57P02", code == "57P03", code == "57P05":
			return ErrUnavailable, true
		}
		return nil, true
	}
	// glebarez/sqlite registers its fork of the modernc.org/sqlite driver, whose errors are
	// *gosqlite.Error; the result codes are modernc's, and extended codes are on.
	var liteErr *gosqlite.Error
	if errors.As(err, &liteErr) {
		switch code := liteErr.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return ErrConflict, true
		case code&0xff == sqlite3.SQLITE_BUSY, code&0xff == sqlite3.SQLITE_LOCKED:
			return ErrUnavailable, true
		}
		return nil, true
	}
	return nil, false
}

// connectionLost tells whether err says the connection to the server failed or ended: a refused
// or broken socket, a name that did not resolve, or a connection closed under the driver.
func connectionLost(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, pgconn.ErrConnClosed)
}
