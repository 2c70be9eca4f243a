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
func (s *Server) keepCheckpoint(cp *vaultapi.AuditCheckpoint) {
	if cp == nil || s.cfg.VaultCheckpointFile == "" {
		return
	}
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	if cp.Seq <= s.cpSeq {
		return
	}
	if err := writeCheckpoint(s.cfg.VaultCheckpointFile, cp); err != nil {
		s.log.Warn("vault audit checkpoint not kept", "seq", cp.Seq, "err", err)
		return
	}
	s.cpSeq = cp.Seq
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
