package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"orderseal/internal/apiroute"
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

// Health is a serving daemon's liveness and readiness (DESIGN.md §11).
// GET /healthz answers 200 while the process serves at all. GET /readyz
// answers 200 while the daemon is ready: no database file found damaged,
// every Check passing (its stores answer, its peers are reachable) and not
// draining for shutdown. Both are unauthenticated and say nothing but that:
// no version, path or identity; the reasons go to the log. The zero value
// is ready and checks nothing; set Checks and Logger before serving.
type Health struct {
	Checks []Check       // what readiness asks besides the files Watch checks
	Logger *slog.Logger  // where a change of readiness is logged; nil: nowhere
	Cache  time.Duration // how long one round of Checks answers /readyz; 0: DefaultReadyCache

	damaged  atomic.Pointer[DamagedError]
	draining atomic.Bool

	mu      sync.Mutex
	checked time.Time
	failing []string // names of the checks failing at checked
}

// Check is one condition of readiness. Name is what /readyz lists when it
// fails ("store", "peers"): a kind, never an identity, address or path.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Readiness defaults: one round of checks answers probes for
// DefaultReadyCache (a probe flood never floods the stores or the peers),
// and a check gets ReadyTimeout to answer.
const (
	DefaultReadyCache = time.Second
	ReadyTimeout      = 2 * time.Second
)

// The paths Health answers itself, before any route of the daemon's API.
const (
	PathHealthz = apiroute.PathHealthz
	PathReadyz  = apiroute.PathReadyz
)

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

// Drain turns h not ready for good: the daemon is shutting down, and a load
// balancer should send its requests elsewhere while those in flight finish.
func (h *Health) Drain() {
	if !h.draining.Swap(true) && h.Logger != nil {
		h.Logger.Info("draining: not ready")
	}
}

// Failing runs the checks (at most once per Cache) and returns the names of
// those failing, "draining" first when h drains; empty when ready. A file
// found damaged is reported by Damaged, not here.
func (h *Health) Failing(ctx context.Context) []string {
	if h.draining.Load() {
		return []string{"draining"}
	}
	if len(h.Checks) == 0 {
		return nil
	}
	cache := h.Cache
	if cache <= 0 {
		cache = DefaultReadyCache
	}
	h.mu.Lock()
	defer h.mu.Unlock() // one round at a time: concurrent probes wait for its answer
	if !h.checked.IsZero() && time.Since(h.checked) < cache {
		return h.failing
	}
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	errs := make([]error, len(h.Checks))
	var wg sync.WaitGroup
	for i, c := range h.Checks {
		wg.Go(func() { errs[i] = c.Run(ctx) })
	}
	wg.Wait()
	var failing []string
	for i, c := range h.Checks {
		if errs[i] != nil && !slices.Contains(failing, c.Name) {
			failing = append(failing, c.Name)
		}
	}
	if h.Logger != nil && !slices.Equal(failing, h.failing) {
		if len(failing) == 0 {
			h.Logger.Info("ready")
		} else {
			for i, c := range h.Checks {
				if errs[i] != nil {
					h.Logger.Warn("not ready", "check", c.Name, "err", errs[i].Error())
				}
			}
		}
	}
	h.checked, h.failing = time.Now(), failing
	return failing
}

// Handler serves GET /healthz (200 while the process serves) and GET
// /readyz (200 while ready, 503 naming the kinds of check failing) and,
// once a file is found damaged, answers every other request 503
// store-damaged instead of next.
func (h *Health) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe := r.Method == http.MethodGet || r.Method == http.MethodHead
		if probe && r.URL.Path == PathHealthz {
			SetRoute(r, PathHealthz)
			writeStatus(w, r, http.StatusOK, apiroute.Liveness{Alive: true})
			return
		}
		if de := h.damaged.Load(); de != nil {
			writeProblem(w, r, problem.New(http.StatusServiceUnavailable, CodeStoreDamaged, "Database damaged",
				"This daemon's database failed its consistency check; its operator must restore it."))
			return
		}
		if probe && r.URL.Path == PathReadyz {
			SetRoute(r, PathReadyz)
			if failing := h.Failing(r.Context()); len(failing) > 0 {
				writeStatus(w, r, http.StatusServiceUnavailable, apiroute.Readiness{Ready: false, Failing: failing})
				return
			}
			writeStatus(w, r, http.StatusOK, apiroute.Readiness{Ready: true})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeStatus writes a probe's small JSON answer, never cached.
func writeStatus(w http.ResponseWriter, r *http.Request, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // a bool and strings
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method == http.MethodGet {
		w.Write(append(body, '\n'))
	}
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
