package outbox

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestList: jobs by state, oldest first, with attempts, next attempt and
// last error; an unknown state is an error.
func TestList(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "o.db"))
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, k := range []string{"a", "b", "c"} {
		if err := Enqueue(ctx, db, "send", k, []byte("secret payload"), at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE outbox SET state = 'failed', attempts = 12, last_error = 'gone' WHERE key = 'b'`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		state string
		keys  string
	}{
		{"", "abc"},
		{StatePending, "ac"},
		{StateFailed, "b"},
		{StateDone, ""},
	}
	for _, tt := range tests {
		got, err := List(ctx, db, tt.state)
		if err != nil {
			t.Fatal(err)
		}
		keys := ""
		for _, e := range got {
			keys += e.Key
			if e.Kind != "send" || !e.Created.Equal(at) || !e.NextAt.Equal(at) {
				t.Fatalf("entry %+v", e)
			}
			if e.Key == "b" && (e.Attempts != 12 || e.LastError != "gone" || e.State != StateFailed) {
				t.Fatalf("failed entry %+v", e)
			}
		}
		if keys != tt.keys {
			t.Fatalf("state %q: %q, want %q", tt.state, keys, tt.keys)
		}
	}
	if _, err := List(ctx, db, "stuck"); err == nil {
		t.Fatal("an unknown state listed")
	}
}
