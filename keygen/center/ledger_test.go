package center

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The ledger: every issuance recorded, the chain checked line by line, and
// any edit, deletion, move or cut named by its line.

// ledgerCenter is an OS2 center whose ledger holds: 1 checkpoint (init),
// 2 issue, 3 checkpoint, 4–6 issue, 7 checkpoint.
func ledgerCenter(t *testing.T) string {
	t.Helper()
	dir, root := newOfficerCenter(t, "ledger")
	root.Close()
	c := openWith(t, dir, "bob", "carol")
	e, err := c.ForEpoch(testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	out := t.TempDir()
	if err := e.IssueFile("merchant:shop.example", filepath.Join(out, "shop.key")); err != nil {
		t.Fatal(err)
	}
	res, err := e.IssueBatchLogged(t.Context(), []string{"cardholder:a@example.org", "cardholder:b@example.org", "Bad:identity", "issuer:bank.example"}, out, nil)
	if err != nil || res[2].Err == nil {
		t.Fatalf("batch: %v, %v", res, err)
	}
	return dir
}

func ledgerLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLedger(t *testing.T, dir string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, LedgerFile), bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLedger(t *testing.T) {
	dir := ledgerCenter(t)
	s, err := VerifyLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Lines != 7 || s.Issued != 4 || s.Checkpoints != 3 || s.Directory != 0 {
		t.Fatalf("summary %+v", s)
	}
	lines := ledgerLines(t, dir)
	for i, want := range []string{LedgerCheckpoint, LedgerIssue, LedgerCheckpoint, LedgerIssue, LedgerIssue, LedgerIssue, LedgerCheckpoint} {
		l, _, err := parseLedgerLine(bytes.TrimSuffix(lines[i], []byte("\n")))
		if err != nil || l.Kind != want {
			t.Fatalf("line %d: %v, %v", i+1, l, err)
		}
		if i > 0 && strings.Join(l.Officers, ",") != "bob,carol" {
			t.Errorf("line %d names officers %v", i+1, l.Officers)
		}
	}
	if bytes.Contains(bytes.Join(lines, nil), []byte("Bad:identity")) {
		t.Error("a refused identity is in the ledger")
	}
	st, _ := os.Stat(filepath.Join(dir, LedgerFile))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("ledger mode %o", st.Mode().Perm())
	}
}

func TestLedgerTampering(t *testing.T) {
	dir := ledgerCenter(t)
	lines := ledgerLines(t, dir)
	edit := func(i int, from, to string) [][]byte {
		out := append([][]byte(nil), lines...)
		if !bytes.Contains(out[i], []byte(from)) {
			t.Fatalf("line %d lacks %q", i+1, from)
		}
		out[i] = bytes.Replace(out[i], []byte(from), []byte(to), 1)
		return out
	}
	without := func(i int) [][]byte {
		out := append([][]byte(nil), lines[:i]...)
		return append(out, lines[i+1:]...)
	}
	swap := func(i, j int) [][]byte {
		out := append([][]byte(nil), lines...)
		out[i], out[j] = out[j], out[i]
		return out
	}
	cut := func(lines [][]byte, i, n int) [][]byte {
		out := append([][]byte(nil), lines...)
		out[i] = append(append([]byte(nil), lines[i][:n]...), '\n')
		return out
	}
	for _, tc := range []struct {
		name  string
		lines [][]byte
		line  int    // the line the error names
		msg   string // and what it says
	}{
		{"edit an epoch", edit(4, `"epoch":"2026-12"`, `"epoch":"2027-01"`), 6, "line 5 edited"},
		{"edit an identity", edit(1, `"identity":"merchant:shop.example"`, `"identity":"merchant:shop.examplf"`), 3, "line 2 edited"},
		{"edit a role", edit(1, `"role":"merchant"`, `"role":"issuer"`), 2, "role"},
		{"edit the officers", edit(1, `["bob","carol"]`, `["alice","carol"]`), 3, "line 2 edited"},
		{"edit a checkpoint's time", edit(2, `"time":"2026-12-06T12:00:00.`, `"time":"2026-12-06T12:00:01.`), 3, "signature"},
		{"edit the key hash", edit(3, `"key":"`, `"key":"0`), 4, "key must be"},
		{"non-canonical spacing", edit(3, `"seq":4,`, `"seq": 4,`), 4, "canonical"},
		{"delete an issue line", without(4), 5, "seq 6, want 5"},
		{"delete the first line", without(0), 1, "seq 2, want 1"},
		{"reorder two lines", swap(3, 4), 4, "seq 5, want 4"},
		{"truncate a line", cut(lines, 5, 150), 6, "malformed"},
		{"truncate the file mid-line", append(append([][]byte(nil), lines[:6]...), lines[6][:100]), 7, "truncated"},
		{"cut the last checkpoint", lines[:6], 4, "not covered by a checkpoint"},
		{"append a line by hand", append(append([][]byte(nil), lines...), lines[5]), 8, "seq 6, want 8"},
		{"renumber after a deletion", renumber(t, without(4)), 5, "line 4 edited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t, dir)
			writeLedger(t, d, tc.lines)
			_, err := VerifyLedger(d)
			var le *LedgerError
			if !errors.As(err, &le) || !errors.Is(err, ErrLedger) {
				t.Fatalf("want a LedgerError, got %v", err)
			}
			if le.Line != tc.line || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want line %d and %q, got %v", tc.line, tc.msg, err)
			}
			// Nothing is issued on a broken ledger (but for an unsigned tail,
			// which the next checkpoint covers).
			c := openWith(t, d, "alice", "bob")
			defer c.Close()
			e, _ := c.ForEpoch(testEpoch)
			key := filepath.Join(t.TempDir(), "x.key")
			err = e.IssueFile("merchant:x.example", key)
			if tc.name == "cut the last checkpoint" {
				if err != nil {
					t.Fatalf("issue after an interrupted command: %v", err)
				}
				if _, err := VerifyLedger(d); err != nil {
					t.Fatalf("the next checkpoint does not cover the tail: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrLedger) {
				t.Fatalf("issued on a broken ledger: %v", err)
			}
			if _, err := os.Stat(key); err == nil {
				t.Fatal("a key file was written")
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		d := copyDir(t, dir)
		os.Remove(filepath.Join(d, LedgerFile))
		if _, err := VerifyLedger(d); !errors.Is(err, ErrLedger) {
			t.Fatalf("missing ledger: %v", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		d := copyDir(t, dir)
		writeLedger(t, d, nil)
		if _, err := VerifyLedger(d); !errors.Is(err, ErrLedger) {
			t.Fatalf("empty ledger: %v", err)
		}
	})
	t.Run("another center's ledger", func(t *testing.T) {
		other, c := newOfficerCenter(t, "ledger, another center")
		c.Close()
		d := copyDir(t, dir)
		b, _ := os.ReadFile(filepath.Join(other, LedgerFile))
		writeLedger(t, d, [][]byte{b})
		var le *LedgerError
		if _, err := VerifyLedger(d); !errors.As(err, &le) || le.Line != 1 {
			t.Fatalf("another center's ledger: %v", err)
		}
	})
	t.Run("locked", func(t *testing.T) {
		d := copyDir(t, dir)
		c := openWith(t, d, "alice", "bob")
		defer c.Close()
		lw, err := c.openLedger(false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.openLedger(false); !errors.Is(err, ErrLedger) || !strings.Contains(err.Error(), "in use") {
			t.Errorf("second writer: %v", err)
		}
		if err := lw.commit(); err != nil {
			t.Fatal(err)
		}
	})
}

// renumber rewrites seq and prev of every line after a deletion, as a
// forger without the officers would: the chain holds, the checkpoint
// signatures do not (or, here, the first moved checkpoint's prev).
func renumber(t *testing.T, lines [][]byte) [][]byte {
	t.Helper()
	out := append([][]byte(nil), lines...)
	// Only seq, from the deleted line on: the prev chain then breaks first.
	for i := 4; i < len(out); i++ {
		l, _, err := parseLedgerLine(bytes.TrimSuffix(out[i], []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		old := []byte(`"seq":` + strconv.FormatUint(l.Seq, 10) + `,`)
		out[i] = bytes.Replace(out[i], old, []byte(`"seq":`+strconv.Itoa(i+1)+`,`), 1)
	}
	return out
}
