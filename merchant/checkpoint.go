package merchant

import (
	"encoding/json"
	"os"

	"orderseal/internal/secfile"
	vaultapi "orderseal/vault/api"
)

// keepCheckpoint keeps the newest audit checkpoint the vault sent (DESIGN.md
// §7, issue 22 item 3) in Config.VaultCheckpointFile, replaced atomically and
// durably (secfile.Replace): an anchor of the vault's audit log outside the
// vault, for 'merchant vault audit verify -checkpoint FILE'. It came in a signed answer; its MAC only
// the vault's data key checks. A checkpoint older than the one kept, or one
// that cannot be written, changes nothing (it is logged; the next grant
// brings a newer one).
//
// Writes are coalesced: a caller that finds a write in progress leaves its
// checkpoint to that writer, which writes the newest one waiting before it
// returns, so concurrent grants cost one file replacement (two fsyncs), not
// one each, and only the writer waits for it.
func (s *Server) keepCheckpoint(cp *vaultapi.AuditCheckpoint) {
	if cp == nil || s.cfg.VaultCheckpointFile == "" {
		return
	}
	s.cpMu.Lock()
	if cp.Seq <= s.cpSeq || (s.cpNext != nil && cp.Seq <= s.cpNext.Seq) {
		s.cpMu.Unlock()
		return
	}
	s.cpNext = cp
	if s.cpWriting {
		s.cpMu.Unlock()
		return
	}
	s.cpWriting = true
	for s.cpNext != nil {
		next := s.cpNext
		s.cpNext = nil
		if next.Seq <= s.cpSeq {
			continue // came while a newer one was being written
		}
		s.cpMu.Unlock()
		err := writeCheckpoint(s.cfg.VaultCheckpointFile, next)
		s.cpMu.Lock()
		if err != nil {
			s.log.Warn("vault audit checkpoint not kept", "seq", next.Seq, "err", err)
			continue
		}
		s.cpSeq = next.Seq
	}
	s.cpWriting = false
	s.cpMu.Unlock()
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
