package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/dsn"
	"orderseal/internal/problem"
	"orderseal/internal/sqlitex"
	"orderseal/internal/tick"
)

// Every daemon checks its SQLite files with PRAGMA quick_check before it
// opens them and on a schedule while it serves (issue 22 item 4): a damaged
// file refuses the start with one line naming it and how to restore it; a
// file found damaged later turns the daemon not ready — /readyz and every
// request answer 503 store-damaged — until it is restored and restarted.

// CodeStoreDamaged is the 503 a daemon whose database failed its check answers.
const CodeStoreDamaged = "store-damaged"

// SQLiteFiles returns the files of the SQLite DSNs among dsns ("sqlite:PATH"
// or a bare path); other schemes and empty strings are skipped.
func SQLiteFiles(dsns ...string) []string {
	var out []string
	for _, s := range dsns {
		if s == "" {
			continue
		}
		if d, err := dsn.Parse(s); err == nil && d.Scheme == dsn.SQLite {
			out = append(out, d.Path)
		}
	}
	return out
}

// DamagedError is a database file that failed its consistency check.
type DamagedError struct {
	Path string
	Err  error
}

func (e *DamagedError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *DamagedError) Unwrap() error { return e.Err }

// RestoreHint says how an operator restores a damaged database file.
func (e *DamagedError) RestoreHint() string {
	return fmt.Sprintf("stop the daemon, copy your last backup of %s over it (and remove %s-wal and %s-shm), then start it again", e.Path, e.Path, e.Path)
}

// CheckStores quick-checks every existing file of files (a file not made yet
// is fine: the daemon creates it); the first damaged one is a *DamagedError.
func CheckStores(ctx context.Context, files ...string) error {
	for _, f := range files {
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := sqlitex.CheckFile(ctx, f); err != nil {
			if errors.Is(err, sqlitex.ErrDamaged) {
				return &DamagedError{Path: f, Err: err}
			}
			return fmt.Errorf("checking %s: %w", f, err)
		}
	}
	return nil
}

// Health is a serving daemon's readiness: ready until a scheduled check
// finds a file damaged.
type Health struct {
	damaged atomic.Pointer[DamagedError]
}

// Watch re-checks files every d until ctx ends; the first damage found
// turns h not ready and is logged with the file and how to restore it.
func (h *Health) Watch(ctx context.Context, d time.Duration, logger *slog.Logger, files ...string) {
	if d <= 0 {
		return
	}
	tick.Every(ctx, d, func() {
		err := CheckStores(ctx, files...)
		var de *DamagedError
		if errors.As(err, &de) {
			if h.damaged.CompareAndSwap(nil, de) {
				logger.Error("database damaged: not ready", "file", de.Path, "err", de.Err.Error(), "restore", de.RestoreHint())
			}
		} else if err != nil && ctx.Err() == nil {
			logger.Warn("database check could not run", "err", err)
		}
	})
}

// Damaged returns the damage found, nil while ready.
func (h *Health) Damaged() *DamagedError { return h.damaged.Load() }

// Handler serves GET /readyz (200 while ready) and, once a file is found
// damaged, answers every request 503 store-damaged instead of next.
func (h *Health) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		de := h.damaged.Load()
		if de != nil {
			writeProblem(w, r, problem.New(http.StatusServiceUnavailable, CodeStoreDamaged, "Database damaged",
				"This daemon's database failed its consistency check; its operator must restore it."))
			return
		}
		if r.URL.Path == "/readyz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				w.Write([]byte(`{"ready":true}` + "\n"))
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CheckStoresAtStart quick-checks a daemon's database files before it opens
// them: a damaged one is a one-line error naming it, with how to restore it
// as the hint.
func CheckStoresAtStart(ctx context.Context, files ...string) error {
	err := CheckStores(ctx, files...)
	var de *DamagedError
	if errors.As(err, &de) {
		return cli.WithHint(fmt.Errorf("database %s is damaged, not starting: %v", de.Path, de.Err), de.RestoreHint())
	}
	return err
}

// Guard starts the scheduled checks of files (every d, until ctx ends) and
// returns h behind the readiness they keep: GET /readyz, and 503
// store-damaged for everything once a file is found damaged.
func Guard(ctx context.Context, d time.Duration, h http.Handler, logger *slog.Logger, files ...string) http.Handler {
	health := &Health{}
	go health.Watch(ctx, d, logger, files...)
	return health.Handler(h)
}
