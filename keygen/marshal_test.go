package keygen

import (
	"bytes"
	"encoding/json"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen/internal/field"

	"orderseal/internal/wire"
)

// TestMarshalJSONMatchesEncodingJSON: the hand-built key file is the one
// encoding/json writes, byte for byte.
func TestMarshalJSONMatchesEncodingJSON(t *testing.T) {
	r := testRand("marshal")
	for _, k := range []int{1, 3, 64} {
		m := testMaster(t, k, r)
		for _, id := range []string{randomID(r, "cardholder"), "merchant:a+b@c.d_e-f", "vault:0"} {
			key := mustIssue(t, m, id)
			raw := make([]byte, k*fp.Size)
			for i := range key.row {
				field.Encode(raw[i*fp.Size:], &key.row[i])
			}
			want, err := json.Marshal(partyKeyWire{V: 1, Suite: SuiteOS1, System: key.params.SystemHex(),
				K: k, Identity: id, Row: wire.B64(raw)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := key.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("k=%d %s:\n got %s\nwant %s", k, id, got, want)
			}
		}
	}
	// An identity that needs escaping (only a hand-built key can hold one)
	// goes through encoding/json.
	key := &PartyKey{params: Params{Suite: SuiteOS1, K: 1}, identity: `x<"y">&`, row: make([]fp.Elt, 1)}
	got, err := key.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var w partyKeyWire
	if err := json.Unmarshal(got, &w); err != nil || w.Identity != key.identity {
		t.Fatalf("escaped identity: %s (%v)", got, err)
	}
}
