package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestPendingDuringOutage takes the primary's directory away (an unmounted
// volume), registers 50 values, and checks that none is lost on the way
// through the pending table.
func TestPendingDuringOutage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	before, _, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte("before the outage"), false, 0)
	if err != nil {
		t.Fatal(err)
	}

	restore := outage(t, e.primaryDir)
	values := map[string]string{}
	for i := 0; i < 50; i++ {
		v := fmt.Sprintf("%d Outage Lane", i)
		tok, created, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte(v), false, 0)
		if err != nil || !created || tok == "" {
			t.Fatalf("register %d during outage: %q %v %v", i, tok, created, err)
		}
		values[tok] = v
	}
	st, err := e.s.Status(ctx)
	if err != nil || st.PrimaryOK || !st.BackupOK || st.Pending != 50 {
		t.Fatalf("status during outage %+v %v", st, err)
	}
	// Pending records reveal and dedupe.
	for tok, v := range values {
		got, err := e.s.Reveal(ctx, tok)
		if err != nil || string(got) != v {
			t.Fatalf("reveal pending %s: %q %v", tok, got, err)
		}
		again, created, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte(v), false, 0)
		if err != nil || again != tok || created {
			t.Fatalf("dedupe against pending: %s %v %v", again, created, err)
		}
		break
	}
	// Older records still reveal, from the backup, and dedupe through it.
	if got, err := e.s.Reveal(ctx, before); err != nil || string(got) != "before the outage" {
		t.Fatalf("reveal during outage: %q %v", got, err)
	}
	if tok, created, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte("before the outage"), false, 0); err != nil || tok != before || created {
		t.Fatalf("dedupe through backup: %s %v %v", tok, created, err)
	}
	if n, err := e.s.Flush(ctx); !errors.Is(err, ErrUnavailable) || n != 0 {
		t.Fatalf("flush during outage: %d %v", n, err)
	}

	restore()
	moved, err := e.s.Flush(ctx)
	if err != nil || moved != 50 {
		t.Fatalf("flush: moved %d, %v", moved, err)
	}
	if moved, err := e.s.Flush(ctx); err != nil || moved != 0 {
		t.Fatalf("second flush: %d %v", moved, err)
	}
	pending, primary, backup := rawDB(t, e.cfg.IndexPath+".pending"), rawDB(t, e.dataPath), rawDB(t, e.backupPath)
	if n := pending.count("pending"); n != 0 {
		t.Fatalf("%d records still pending", n)
	}
	for tok, v := range values {
		if !primary.has("records", tok) || !backup.has("records", tok) {
			t.Fatalf("%s missing after flush", tok)
		}
		got, err := e.s.Reveal(ctx, tok)
		if err != nil || string(got) != v {
			t.Fatalf("reveal %s after flush: %q %v", tok, got, err)
		}
	}
	if n := primary.count("records"); n != 51 {
		t.Fatalf("primary holds %d records, want 51", n)
	}
	if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
		t.Fatalf("check after flush: %v %v", d, err)
	}
}

// TestFlushStopsMidway: with the backup down, records reach the primary but
// stay pending; nothing is lost and a later Flush finishes the job.
func TestFlushStopsMidway(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	restorePrimary := outage(t, e.primaryDir)
	var toks []string
	for i := 0; i < 10; i++ {
		tok, _, err := e.s.Register(ctx, "cardholder:bob", TypePhone, "", []byte(fmt.Sprintf("+1 555 01%02d", i)), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	restorePrimary()
	restoreBackup := outage(t, e.backupDir)
	moved, err := e.s.Flush(ctx)
	if !errors.Is(err, ErrUnavailable) || moved != 0 {
		t.Fatalf("flush with backup down: %d %v", moved, err)
	}
	pending := rawDB(t, e.cfg.IndexPath+".pending")
	if n := pending.count("pending"); n != 10 {
		t.Fatalf("%d pending after a failed flush, want 10", n)
	}
	if n := rawDB(t, e.dataPath).count("records"); n != 1 {
		t.Fatalf("primary holds %d records, want the 1 flushed before the backup failed", n)
	}
	// Registering now writes the primary, fails the backup: pending again.
	tok, _, err := e.s.Register(ctx, "cardholder:bob", TypePhone, "", []byte("+1 555 0200"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	toks = append(toks, tok)
	restoreBackup()
	if moved, err := e.s.Flush(ctx); err != nil || moved != 11 {
		t.Fatalf("flush: %d %v", moved, err)
	}
	if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
		t.Fatalf("check: %v %v", d, err)
	}
	for _, tok := range toks {
		if _, err := e.s.Reveal(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunFlusher(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e := newEnv(t, false)
	restore := outage(t, e.primaryDir)
	for i := 0; i < 5; i++ {
		if _, _, err := e.s.Register(ctx, "cardholder:alice", TypeEmail, "", []byte(fmt.Sprintf("a%d@example.org", i)), false, 0); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		e.s.RunFlusher(ctx, 10*time.Millisecond)
		close(done)
	}()
	time.Sleep(30 * time.Millisecond) // a few failing rounds
	restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.s.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flusher left %d pending", st.Pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestBackupFailover: when the primary loses a record or the whole file,
// Reveal reads the backup.
func TestBackupFailover(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		breakIt func(t *testing.T, e *env, tok string)
	}{
		{"primary removed while open", func(t *testing.T, e *env, tok string) {
			os.RemoveAll(e.primaryDir)
		}},
		{"primary directory replaced by a file", func(t *testing.T, e *env, tok string) {
			outage(t, e.primaryDir)
		}},
		{"primary corrupted, vault restarted", func(t *testing.T, e *env, tok string) {
			e.s.Close()
			for _, suffix := range []string{"-wal", "-shm"} {
				os.Remove(e.dataPath + suffix)
			}
			junk := make([]byte, 8192)
			for i := range junk {
				junk[i] = byte(i * 7)
			}
			if err := os.WriteFile(e.dataPath, junk, 0o600); err != nil {
				t.Fatal(err)
			}
			e.open(t)
		}},
		{"primary file deleted, vault restarted", func(t *testing.T, e *env, tok string) {
			e.s.Close()
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(e.dataPath + suffix)
			}
			e.open(t)
		}},
		{"primary row deleted", func(t *testing.T, e *env, tok string) {
			rawDB(t, e.dataPath).exec(`DELETE FROM records WHERE token = ?`, tok)
		}},
		{"primary row tampered", func(t *testing.T, e *env, tok string) {
			rawDB(t, e.dataPath).exec(`UPDATE records SET ct = zeroblob(length(ct)) WHERE token = ?`, tok)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true)
			tok, _, err := e.s.Register(ctx, "cardholder:alice", TypeNationalID, "", []byte("AB 12 34 56 C"), false, 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.breakIt(t, e, tok)
			got, err := e.s.Reveal(ctx, tok)
			if err != nil || string(got) != "AB 12 34 56 C" {
				t.Fatalf("reveal from backup: %q %v", got, err)
			}
		})
	}

	t.Run("no backup", func(t *testing.T) {
		e := newEnv(t, false)
		tok, _, err := e.s.Register(ctx, "cardholder:alice", TypeNationalID, "", []byte("AB 12 34 56 C"), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		outage(t, e.primaryDir)
		if _, err := e.s.Reveal(ctx, tok); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("want ErrUnavailable, got %v", err)
		}
	})
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	var toks []string
	for i := 0; i < 5; i++ {
		tok, _, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte(fmt.Sprintf("%d Check St", i)), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
		t.Fatalf("clean check: %v %v", d, err)
	}
	backup, primary := rawDB(t, e.backupPath), rawDB(t, e.dataPath)
	backup.exec(`DELETE FROM records WHERE token = ?`, toks[1])
	backup.exec(`UPDATE records SET ct = zeroblob(length(ct)) WHERE token = ?`, toks[3])
	primary.exec(`DELETE FROM records WHERE token = ?`, toks[4])
	d, err := e.s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]DiffKind{toks[1]: MissingInBackup, toks[3]: CiphertextDiffers, toks[4]: MissingInPrimary}
	if len(d) != len(want) {
		t.Fatalf("differences %+v, want %v", d, want)
	}
	for _, x := range d {
		if want[x.Token] != x.Kind {
			t.Fatalf("difference %+v, want %v", x, want)
		}
	}
	// Without a backup there is nothing to compare.
	if _, err := newEnv(t, false).s.Check(ctx); !errors.Is(err, ErrInvalid) {
		t.Fatalf("check without backup: %v", err)
	}
}
