package merchant

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	vaultapi "orderseal/vault/api"
)

// TestKeepCheckpointConcurrent: checkpoints arriving at once, in any
// order, leave the newest in the file, and an older one after it changes
// nothing.
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
	var cp vaultapi.AuditCheckpoint
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &cp) != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if cp.Seq != n || s.cpSeq != n || readCheckpointSeq(path) != n {
		t.Fatalf("kept seq %d (server says %d), want %d", cp.Seq, s.cpSeq, n)
	}
}
