// Package dsn parses the data source names every orderseal daemon takes for
// its stores (DESIGN.md §8, §9): "sqlite:PATH" or a bare PATH for the
// embedded default, "postgres://…" or "postgresql://…" for PostgreSQL. The
// daemon picks a store backend by the scheme (Open); nothing above the
// backend sees a path.
package dsn

import (
	"errors"
	"fmt"
	"strings"
)

// Schemes a DSN can name.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ErrDSN is returned for a DSN no backend understands.
var ErrDSN = errors.New("unsupported database DSN")

// DSN is a parsed data source name.
type DSN struct {
	Scheme string // SQLite or Postgres
	// Path is the file of a SQLite DSN; URL the whole PostgreSQL DSN.
	Path, URL string
}

// String is the DSN as given, with any password of a PostgreSQL DSN hidden.
func (d DSN) String() string {
	if d.Scheme == SQLite {
		return "sqlite:" + d.Path
	}
	return redact(d.URL)
}

// Parse reads s. A string with no scheme is a SQLite file path.
func Parse(s string) (DSN, error) {
	switch {
	case s == "":
		return DSN{}, fmt.Errorf("%w: empty (want sqlite:PATH or postgres://…)", ErrDSN)
	case strings.HasPrefix(s, "sqlite://"):
		return sqlitePath(strings.TrimPrefix(s, "sqlite://"))
	case strings.HasPrefix(s, "sqlite:"):
		return sqlitePath(strings.TrimPrefix(s, "sqlite:"))
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return DSN{Scheme: Postgres, URL: s}, nil
	case strings.HasPrefix(s, "file:"), s == ":memory:":
		return DSN{}, fmt.Errorf("%w: %q (want sqlite:PATH with a file path)", ErrDSN, s)
	}
	if i := strings.Index(s, "://"); i > 0 && !strings.ContainsAny(s[:i], `/\.`) {
		return DSN{}, fmt.Errorf("%w: scheme %q (want sqlite:PATH or postgres://…)", ErrDSN, s[:i])
	}
	return sqlitePath(s)
}

func sqlitePath(p string) (DSN, error) {
	if p == "" || p == ":memory:" || strings.HasPrefix(p, "file:") {
		return DSN{}, fmt.Errorf("%w: %q (want sqlite:PATH with a file path)", ErrDSN, "sqlite:"+p)
	}
	return DSN{Scheme: SQLite, Path: p}, nil
}

// Open opens the backend d's scheme names: sqlite for SQLite, postgres for
// PostgreSQL. Whatever fails, it returns S's zero value, so a backend's nil
// pointer never becomes a non-nil interface S.
func Open[S any](d DSN, sqlite, postgres func() (S, error)) (S, error) {
	var open func() (S, error)
	switch d.Scheme {
	case SQLite:
		open = sqlite
	case Postgres:
		open = postgres
	default: // a DSN Parse did not return
		var zero S
		return zero, fmt.Errorf("%w: no %s backend for %s", ErrDSN, d.Scheme, d)
	}
	s, err := open()
	if err != nil {
		var zero S
		return zero, err
	}
	return s, nil
}

// Redact is s as given with any password of a URL-form DSN hidden, for
// messages about a DSN that may not even parse.
func Redact(s string) string { return redact(s) }

// redact hides the password of a URL-form DSN.
func redact(s string) string {
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	userinfo := s[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		return s[:scheme+3] + userinfo[:i] + ":xxxxx" + s[at:]
	}
	return s
}

// SQLitePath returns the file a DSN names, refusing any other scheme.
func SQLitePath(s string) (string, error) {
	d, err := Parse(s)
	if err != nil {
		return "", err
	}
	if d.Scheme != SQLite {
		return "", fmt.Errorf("%w: %s is not a SQLite DSN (want sqlite:PATH or a bare path)", ErrDSN, d)
	}
	return d.Path, nil
}
