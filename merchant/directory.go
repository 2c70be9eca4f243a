package merchant

import (
	"context"
	"sync"
	"time"

	"orderseal/keygen"
	"orderseal/suite"
)

// directoryTTL is how long the merchant keeps a peer's directory entries
// before asking again; a failed refresh keeps the entries it has until
// their not_after.
const directoryTTL = 5 * time.Minute

// directoryTimeout bounds one peer's answer while an order form waits.
const directoryTimeout = 3 * time.Second

// directorySource is a peer that publishes its entries.
type directorySource interface {
	Directory(ctx context.Context) ([]*keygen.DirectoryEntry, error)
}

// directory caches the directory entries of the merchant's peers (issuers,
// carrier, vault) for the order form (DESIGN.md §2.1): under a suite with
// a KEM the cardholder seals each section to the entry of its recipient,
// after checking the key center's signature herself. The merchant checks
// them too, so that it never hands out an entry that would not verify.
type directory struct {
	mu      sync.Mutex
	entries map[string][]*keygen.DirectoryEntry
	fetched map[string]time.Time
}

// forForm returns the entries of the merchant and of every peer, fresh
// enough, valid at now; nil under a suite without a KEM.
func (s *Server) directoryForForm(ctx context.Context) []*keygen.DirectoryEntry {
	params := s.cfg.Keys.Params()
	st, err := suite.ByName(params.Suite)
	if err != nil || st.EncapSize() == 0 {
		return nil
	}
	now := s.now()
	var out []*keygen.DirectoryEntry
	keep := func(es []*keygen.DirectoryEntry) {
		for _, e := range es {
			if err := st.VerifyEntry(params, e, now); err == nil {
				out = append(out, e)
			}
		}
	}
	if own, ok := s.cfg.Keys.(keygen.Directory); ok {
		keep(own.Entries())
	}
	peers := map[string]directorySource{s.cfg.Carrier.Identity: s.carrier, s.cfg.Vault.Identity: s.vault}
	for id, c := range s.issuers {
		peers[id] = c
	}
	d := &s.dir
	d.mu.Lock()
	if d.entries == nil {
		d.entries, d.fetched = map[string][]*keygen.DirectoryEntry{}, map[string]time.Time{}
	}
	var stale []string
	for id := range peers {
		if now.Sub(d.fetched[id]) > directoryTTL {
			stale = append(stale, id)
		}
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range stale {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, directoryTimeout)
			defer cancel()
			es, err := peers[id].Directory(cctx)
			if err != nil {
				s.log.Warn("directory entries not refreshed", "peer", id, "err", err)
				return
			}
			d.mu.Lock()
			d.entries[id], d.fetched[id] = es, now
			d.mu.Unlock()
		})
	}
	wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for id := range peers {
		keep(d.entries[id])
	}
	return out
}
