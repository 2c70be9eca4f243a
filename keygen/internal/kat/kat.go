// Package kat loads the known-answer vectors of keygen/testdata/kat.json
// (see keygen/testdata/README.md) for the tests of keygen and keygen/center.
// It imports neither, so that keygen's own tests can use it.
package kat

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// File is the vectors' file name in keygen/testdata.
const File = "kat.json"

// SectionField is the pair field holding
// Expand(keygen.LabelSection, SectionRole, SectionOrder).
const (
	SectionField = "section_issuer_ord-0001"
	SectionRole  = "issuer"
	SectionOrder = "ord-0001"
)

// Doc is the whole file.
type Doc struct {
	Inputs struct {
		Seed        string   `json:"seed"`
		System      string   `json:"system"`
		IdentityDST string   `json:"identity_dst"`
		Ks          []int    `json:"ks"`
		Identities  []string `json:"identities"`
		Section     struct {
			Role    string `json:"role"`
			OrderID string `json:"order_id"`
			Field   string `json:"field"`
		} `json:"section"`
	} `json:"inputs"`
	Vectors []Vector `json:"vectors"`
}

// Vector holds the values of one k.
type Vector struct {
	K      int `json:"k"`
	Master struct {
		Row0First3 []string `json:"D_row0_first3"`
		D12        *string  `json:"D_1_2"`
	} `json:"master"`
	Identities []Identity `json:"identities"`
	Pairs      []Pair     `json:"pairs"`
}

// Identity is one party's point and row.
type Identity struct {
	ID        string   `json:"id"`
	X         string   `json:"x"`
	Row       []string `json:"row"`        // whole row (small k)
	RowFirst4 []string `json:"row_first4"` // large k: r_0..r_3 …
	RowSHA256 string   `json:"row_sha256"` // … and SHA-256(r_0 || … || r_{k-1})
}

// Pair is the shared values of two parties.
type Pair struct {
	A           string `json:"a"`
	B           string `json:"b"`
	S           string `json:"s"`
	K           string `json:"K"`
	Fingerprint string `json:"fingerprint"`
	Section     string `json:"section_issuer_ord-0001"`
}

// Path is the vectors' file, found from this source file so that any
// package's test reads the one copy.
func Path() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..", "testdata", File)
}

// Load reads and sanity-checks the vectors.
func Load(t testing.TB) *Doc {
	t.Helper()
	data, err := os.ReadFile(Path())
	if err != nil {
		t.Fatalf("known-answer vectors missing: %v (regenerate with `python3 keygen/testdata/kat_gen.py` from the repo root)", err)
	}
	var doc Doc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("testdata/%s: %v", File, err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatalf("testdata/%s holds zero vectors", File)
	}
	for _, v := range doc.Vectors {
		if len(v.Identities) == 0 || len(v.Pairs) == 0 {
			t.Fatalf("testdata/%s: k=%d holds no identities or no pairs", File, v.K)
		}
	}
	if doc.Inputs.Section.Field != SectionField || doc.Inputs.Section.Role != SectionRole ||
		doc.Inputs.Section.OrderID != SectionOrder {
		t.Fatalf("testdata/%s: section inputs %+v, test expects role %q order %q in field %q",
			File, doc.Inputs.Section, SectionRole, SectionOrder, SectionField)
	}
	return &doc
}

// Hex decodes a hex field of the vectors that must be n bytes.
func Hex(t testing.TB, what, s string, n int) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n {
		t.Fatalf("%s: bad hex %q (want %d bytes)", what, s, n)
	}
	return b
}
