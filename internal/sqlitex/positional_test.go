package sqlitex

import (
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestPositionalOf(t *testing.T) {
	cases := []struct {
		in, want string
		order    []int // nil: left as it is
	}{
		{"SELECT 1", "SELECT 1", nil},
		{"SELECT a FROM t WHERE id = $1", "SELECT a FROM t WHERE id = ?", []int{1}},
		{"INSERT INTO t VALUES ($1, $2), ($3, $4)", "INSERT INTO t VALUES (?, ?), (?, ?)", []int{1, 2, 3, 4}},
		{"DELETE FROM t WHERE e <= $1 OR f <= $1", "DELETE FROM t WHERE e <= ? OR f <= ?", []int{1, 1}},
		{"SELECT $2, $1", "SELECT ?, ?", []int{2, 1}},
		{"SELECT ?1 + ?12", "SELECT ? + ?", []int{1, 12}},
		{"SELECT '$1', \"$2\", `$3`, [$4], $5", "SELECT '$1', \"$2\", `$3`, [$4], ?", []int{5}},
		{"SELECT 'it''s $1', $2", "SELECT 'it''s $1', ?", []int{2}},
		{"SELECT $1 -- and $2\n, $3 /* $4 */", "SELECT ? -- and $2\n, ? /* $4 */", []int{1, 3}},
		{"SELECT json_extract(v, '$.a') FROM t WHERE k = $1", "SELECT json_extract(v, '$.a') FROM t WHERE k = ?", []int{1}},
		{"SELECT a - b, c / d, e :: f FROM t WHERE id = $1", "SELECT a - b, c / d, e :: f FROM t WHERE id = ?", []int{1}},
		// Anonymous or named parameters: the query runs as it is.
		{"SELECT ? , $1", "SELECT ? , $1", nil},
		{"SELECT :a, $1", "SELECT :a, $1", nil},
		{"SELECT @a, $1", "SELECT @a, $1", nil},
		{"SELECT $a, $1", "SELECT $a, $1", nil},
		{"SELECT $1a", "SELECT $1a", nil},
		{"SELECT $0", "SELECT $0", nil},
		{"SELECT $01", "SELECT $01", nil},
		{"SELECT $99999999999", "SELECT $99999999999", nil},
		{"SELECT 'unterminated $1", "SELECT 'unterminated $1", nil},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			p := positionalOf(c.in)
			if p.query != c.want || !slices.Equal(p.order, c.order) {
				t.Fatalf("positionalOf(%q) = %q %v, want %q %v", c.in, p.query, p.order, c.want, c.order)
			}
		})
	}
}

func TestPositionalBind(t *testing.T) {
	p := positionalOf("SELECT $2, $1, $2")
	args := []driver.NamedValue{{Ordinal: 1, Value: "a"}, {Ordinal: 2, Value: int64(2)}}
	q, got := p.bind("SELECT $2, $1, $2", args)
	want := []driver.NamedValue{{Ordinal: 1, Value: int64(2)}, {Ordinal: 2, Value: "a"}, {Ordinal: 3, Value: int64(2)}}
	if q != "SELECT ?, ?, ?" || !slices.Equal(got, want) {
		t.Fatalf("bind = %q %v", q, got)
	}
	// Too few arguments or a named one: unchanged, for the driver to refuse.
	for _, a := range [][]driver.NamedValue{args[:1], {{Ordinal: 1, Name: "x", Value: 1}, {Ordinal: 2, Value: 2}}} {
		if q, got := p.bind("SELECT $2, $1, $2", a); q != "SELECT $2, $1, $2" || len(got) != len(a) {
			t.Fatalf("bind(%v) = %q %v, want it unchanged", a, q, got)
		}
	}
}

// TestPositionalQueries runs numbered placeholders through the driver:
// reused, out of order, and a multi-row insert of 6 000 parameters.
func TestPositionalQueries(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (a INTEGER, b TEXT, c BLOB)`); err != nil {
		t.Fatal(err)
	}
	const rows = 2000
	var sb strings.Builder
	var args []any
	sb.WriteString("INSERT INTO t VALUES ")
	for i := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "($%d, $%d, $%d)", 3*i+1, 3*i+2, 3*i+3)
		args = append(args, i, "v"+strconv.Itoa(i), []byte{byte(i)})
	}
	if _, err := db.Exec(sb.String(), args...); err != nil {
		t.Fatal(err)
	}
	var n int
	var b string
	if err := db.QueryRow(`SELECT COUNT(*), MAX(b) FROM t WHERE a >= $2 AND a < $1 AND b <> '$1'`, rows, 10).Scan(&n, &b); err != nil || n != rows-10 || b != "v999" {
		t.Fatalf("count %d, max %q, %v", n, b, err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM t WHERE a = $1 OR a = $1 + 1`, 5).Scan(&n); err != nil || n != 2 {
		t.Fatalf("reused $1: %d, %v", n, err)
	}
}

// FuzzPositionalOf: putting back the number of each ? the rewrite made
// gives the query it was given, and a query left alone is unchanged.
func FuzzPositionalOf(f *testing.F) {
	for _, s := range []string{"SELECT $1, '$2', $3", "SELECT ?1, -- $2\n$3", "/* $1 */ $2 'a''$3' $4", "$1$2", "[$1] `$2` \"$3\" $4", "SELECT :a, $1", "$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		p := positionalOf(q)
		if p.order == nil {
			if p.query != q {
				t.Fatalf("left alone but changed: %q → %q", q, p.query)
			}
			return
		}
		// Each ? the rewrite wrote stands where $N or ?N stood, N its
		// number; the rest of the text is the same. (An alignment search: a
		// ? of the input's own, inside a literal, stays as it is.)
		memo := map[[3]int]bool{}
		var align func(i, j, k int) bool
		align = func(i, j, k int) bool {
			if j == len(p.query) {
				return i == len(q) && k == len(p.order)
			}
			key := [3]int{i, j, k}
			if v, ok := memo[key]; ok {
				return v
			}
			ok := false
			if p.query[j] == '?' && k < len(p.order) && i < len(q) && (q[i] == '$' || q[i] == '?') {
				if num := strconv.Itoa(p.order[k]); strings.HasPrefix(q[i+1:], num) {
					ok = align(i+1+len(num), j+1, k+1)
				}
			}
			if !ok && i < len(q) && q[i] == p.query[j] {
				ok = align(i+1, j+1, k)
			}
			memo[key] = ok
			return ok
		}
		if !align(0, 0, 0) {
			t.Fatalf("%q → %q %v: not the same text with its placeholders renumbered", q, p.query, p.order)
		}
	})
}
