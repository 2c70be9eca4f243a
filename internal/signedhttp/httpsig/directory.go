package httpsig

import (
	"context"
	"fmt"

	"orderseal/keygen"
)

// DirectoryPath is where every signed daemon publishes its own directory
// entries (DESIGN.md §2.1 "Directory"): the key center's certificates of
// its KEM keys, one per epoch it holds. The merchant gathers them for its
// order form.
const DirectoryPath = "/v1/directory"

// Directory is the answer at DirectoryPath.
type Directory struct {
	Entries []*keygen.DirectoryEntry `json:"entries"`
}

// FetchDirectory asks the peer for its entries and keeps only those that
// name the peer: what the merchant relays the cardholder checks again
// against the key center's signature.
func FetchDirectory(ctx context.Context, p PeerClient) ([]*keygen.DirectoryEntry, error) {
	d, err := Call[Directory](ctx, p, MethodGet, DirectoryPath, nil)
	if err != nil {
		return nil, err
	}
	out := d.Entries[:0]
	for _, e := range d.Entries {
		if e == nil || e.Identity != p.Identity {
			return nil, fmt.Errorf("%s published an entry of %v", p.Identity, e)
		}
		out = append(out, e)
	}
	return out, nil
}
