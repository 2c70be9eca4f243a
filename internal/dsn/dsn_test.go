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
