package merchant

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	vaultapi "orderseal/vault/api"
)

// TestKeepCheckpointConcurrent: checkpoints arriving at once, in any
// order, leave the newest in the file, an older one after it changes
// nothing, and the file is replaced a few times, not once per checkpoint
// (each replacement is two fsyncs a grant would otherwise wait for).
func TestKeepCheckpointConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	s := &Server{cfg: Config{VaultCheckpointFile: path}, log: slog.New(slog.DiscardHandler)}
	const n = 200
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				s.keepCheckpoint(&vaultapi.AuditCheckpoint{Seq: int64(n - i), Head: []byte{byte(i)}})
			}
		})
	}
	wg.Wait()
	s.keepCheckpoint(&vaultapi.AuditCheckpoint{Seq: 5})
	s.flushCheckpoint() // what Run does when it stops
	deadline := time.Now().Add(5 * time.Second)
	kept := func() int64 {
		s.cpMu.Lock()
		defer s.cpMu.Unlock()
		return s.cpSeq
	}
	// A write that was under way schedules the last one; the server
	// counts a write once the file is replaced.
	for (readCheckpointSeq(path) != n || kept() != n) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var cp vaultapi.AuditCheckpoint
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &cp) != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	s.cpMu.Lock()
	seq, writes := s.cpSeq, s.cpWrites
	s.cpMu.Unlock()
	if cp.Seq != n || seq != n {
		t.Fatalf("kept seq %d (server says %d), want %d", cp.Seq, seq, n)
	}
	if writes > 3 {
		t.Fatalf("%d checkpoints replaced the file %d times: not paced", n, writes)
	}
}
