package merchant

import (
	"encoding/json"
	"os"
	"time"

	"orderseal/internal/secfile"
	vaultapi "orderseal/vault/api"
)

// CheckpointEvery is the least time between two writes of the vault
// checkpoint file.
const CheckpointEvery = time.Second

// keepCheckpoint keeps the newest audit checkpoint the vault sent (DESIGN.md
// §7, issue 22 item 3) in Config.VaultCheckpointFile, replaced atomically and
// durably (secfile.Replace): an anchor of the vault's audit log outside the
// vault, for 'merchant vault audit verify -checkpoint FILE'. It came in a signed answer; its MAC only
// the vault's data key checks. A checkpoint older than the one kept, or one
// that cannot be written, changes nothing (it is logged; the next grant
// brings a newer one).
//
// Writes are paced and never keep a job waiting: the file is replaced at
// most once every CheckpointEvery, in the background, with the newest
// checkpoint that arrived meanwhile. A replacement costs two fsyncs; a busy
// merchant gets a grant every few milliseconds, and each checkpoint covers
// every entry before it, so the file lags the vault by at most about a
// second (the vault anchors every entry in its own backup store too).
// Run writes the last one when it stops.
func (s *Server) keepCheckpoint(cp *vaultapi.AuditCheckpoint) {
	if cp == nil || s.cfg.VaultCheckpointFile == "" {
		return
	}
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	if cp.Seq <= s.cpSeq || (s.cpNext != nil && cp.Seq <= s.cpNext.Seq) {
		return
	}
	s.cpNext = cp
	if s.cpWriting || s.cpTimer != nil {
		return // the write under way or due takes it
	}
	wait := max(0, time.Until(s.cpLast.Add(CheckpointEvery)))
	s.cpTimer = time.AfterFunc(wait, s.writeCheckpoints)
}

// writeCheckpoints writes the newest checkpoint waiting, and schedules the
// next write when one came meanwhile.
func (s *Server) writeCheckpoints() {
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	s.cpTimer = nil
	next := s.cpNext
	if next == nil || s.cpWriting {
		return
	}
	s.cpNext, s.cpWriting = nil, true
	s.cpMu.Unlock()
	err := writeCheckpoint(s.cfg.VaultCheckpointFile, next)
	s.cpMu.Lock()
	s.cpWriting, s.cpLast = false, time.Now()
	if err != nil {
		s.log.Warn("vault audit checkpoint not kept", "seq", next.Seq, "err", err)
	} else {
		s.cpSeq = max(s.cpSeq, next.Seq)
		s.cpWrites++
	}
	if s.cpNext != nil && s.cpTimer == nil {
		s.cpTimer = time.AfterFunc(CheckpointEvery, s.writeCheckpoints)
	}
}

// flushCheckpoint writes the checkpoint waiting now, if any (at shutdown).
func (s *Server) flushCheckpoint() {
	s.cpMu.Lock()
	if s.cpTimer != nil && s.cpTimer.Stop() {
		s.cpTimer = nil
	}
	s.cpMu.Unlock()
	s.writeCheckpoints()
}

func writeCheckpoint(path string, cp *vaultapi.AuditCheckpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return secfile.Replace(path, append(data, '\n'))
}

// readCheckpointSeq returns the seq of the checkpoint kept at path (0: none).
func readCheckpointSeq(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var cp vaultapi.AuditCheckpoint
	if json.Unmarshal(data, &cp) != nil {
		return 0
	}
	return cp.Seq
}
