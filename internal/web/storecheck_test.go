package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/internal/sqlitex"
	"orderseal/internal/web"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestHealthTurnsNotReady: a file found damaged by a scheduled check turns
// the daemon not ready: /readyz and every request answer 503
// store-damaged, and the log names the file and how to restore it.
func TestHealthTurnsNotReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.db")
	db, err := sqlitex.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)`,
		`WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500) INSERT INTO t SELECT 'k' || x, printf('%0100d', x) FROM n`,
		`PRAGMA wal_checkpoint(TRUNCATE)`} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	var logs lockedBuffer
	h := &web.Health{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Watch(ctx, 5*time.Millisecond, slog.New(slog.NewJSONHandler(&logs, nil)), path)
	ts := httptest.NewServer(h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) })))
	defer ts.Close()
	get := func(p string) (int, string) {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	time.Sleep(30 * time.Millisecond) // several checks of the sound file
	if code, body := get("/v1/anything"); code != 200 || body != "served" {
		t.Fatalf("request while ready: %d %s", code, body)
	}

	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img[4096] ^= 0x01 // page 2's page-type byte
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Damaged() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the damage was not found")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, p := range []string{"/readyz", "/v1/anything"} {
		code, body := get(p)
		var prob struct{ Code string }
		if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &prob) != nil || prob.Code != web.CodeStoreDamaged {
			t.Fatalf("%s once damaged: %d %s", p, code, body)
		}
	}
	if l := logs.String(); !strings.Contains(l, `"file":"`+path+`"`) || !strings.Contains(l, "copy your last backup of "+path) {
		t.Fatalf("log:\n%s", l)
	}
}
