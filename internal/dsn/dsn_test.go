package dsn

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, scheme, path, str string
		err                   bool
	}{
		{in: "merchant.db", scheme: SQLite, path: "merchant.db", str: "sqlite:merchant.db"},
		{in: "/var/lib/orderseal/merchant.db", scheme: SQLite, path: "/var/lib/orderseal/merchant.db", str: "sqlite:/var/lib/orderseal/merchant.db"},
		{in: "sqlite:data/m.db", scheme: SQLite, path: "data/m.db", str: "sqlite:data/m.db"},
		{in: "sqlite:///abs/m.db", scheme: SQLite, path: "/abs/m.db", str: "sqlite:/abs/m.db"},
		{in: "postgres://os:secret@127.0.0.1:5432/merchant", scheme: Postgres, str: "postgres://os:xxxxx@127.0.0.1:5432/merchant"},
		{in: "postgresql://127.0.0.1/merchant", scheme: Postgres, str: "postgresql://127.0.0.1/merchant"},
		{in: "", err: true},
		{in: "sqlite:", err: true},
		{in: ":memory:", err: true},
		{in: "file:m.db?mode=ro", err: true},
		{in: "mysql://h/db", err: true},
	} {
		d, err := Parse(tc.in)
		if tc.err {
			if !errors.Is(err, ErrDSN) {
				t.Errorf("Parse(%q) = %+v, %v; want ErrDSN", tc.in, d, err)
			}
			continue
		}
		if err != nil || d.Scheme != tc.scheme || d.Path != tc.path || d.String() != tc.str {
			t.Errorf("Parse(%q) = %+v (%q), %v; want %s %q %q", tc.in, d, d.String(), err, tc.scheme, tc.path, tc.str)
		}
	}
}

func TestOpen(t *testing.T) {
	type store interface{ Close() error }
	failed := errors.New("cannot open")
	opener := func(name string, err error) func() (store, error) {
		return func() (store, error) {
			var s *fakeStore // nil: what a backend's Open returns with its error
			if err == nil {
				s = &fakeStore{name}
			}
			return s, err
		}
	}
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{in: "m.db", want: "sqlite"},
		{in: "postgres://h/m", want: "postgres"},
		{in: "m.db", err: failed},
		{in: "postgres://h/m", err: failed},
	} {
		d, err := Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(d, opener("sqlite", tc.err), opener("postgres", tc.err))
		if tc.err != nil {
			if s != nil || !errors.Is(err, tc.err) {
				t.Errorf("Open(%q) failing = %#v, %v; want a nil store and its error", tc.in, s, err)
			}
			continue
		}
		if err != nil || s.(*fakeStore).name != tc.want {
			t.Errorf("Open(%q) = %#v, %v; want the %s backend", tc.in, s, err, tc.want)
		}
	}
	if s, err := Open(DSN{}, opener("sqlite", nil), opener("postgres", nil)); s != nil || !errors.Is(err, ErrDSN) {
		t.Errorf("Open of a DSN Parse did not return = %#v, %v; want ErrDSN", s, err)
	}
}

type fakeStore struct{ name string }

func (*fakeStore) Close() error { return nil }
