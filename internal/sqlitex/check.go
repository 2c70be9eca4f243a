package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrDamaged is a database that fails SQLite's own consistency check.
var ErrDamaged = errors.New("database file is damaged")

// QuickCheck runs PRAGMA quick_check (every page, index and constraint
// but the index-to-table cross-check) on db; a damaged database, or one
// SQLite cannot even read for the check, fails with an error wrapping
// ErrDamaged that names the first problems.
func QuickCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return damaged(err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return damaged(err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return damaged(err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrDamaged, strings.Join(problems, "; "))
	}
	return nil
}

func damaged(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrDamaged, err)
}

// CheckFile quick-checks the existing database at path, opened read-only
// beside whatever process serves it; a file that is no database at all is
// damaged too.
func CheckFile(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := Open(path, ReadOnly(), MaxConns(1))
	if err != nil {
		return damaged(err)
	}
	defer db.Close()
	return QuickCheck(ctx, db)
}

// Ping asks db one question that reads its file (the schema's size): what
// a daemon's readiness check calls "the store answers".
func Ping(ctx context.Context, db *sql.DB) error {
	var n int
	return db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema`).Scan(&n)
}
