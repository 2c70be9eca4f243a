package keygen_test

import (
	"encoding/binary"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"orderseal/keygen"
)

// hkdfCallers are the only files that may call HKDF themselves: the pairwise
// key and its sub-keys (length-delimited Info), and the data keys, whose
// info is one whole label with no context.
var hkdfCallers = []string{"keygen/pairwise.go", "internal/datakey/datakey.go"}

// TestLabels holds every key derivation in the tree to one list of unique
// labels: each "orderseal-v…" string is declared exactly once, every
// sub-key of a pairwise key is derived with a keygen.Label* constant, and
// HKDF is called only where the info is length-delimited.
func TestLabels(t *testing.T) {
	root := filepath.Join("..")
	declared := map[string][]string{} // label → where it is declared
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		hkdfName := ""
		for _, im := range f.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); p == "golang.org/x/crypto/hkdf" || p == "crypto/hkdf" {
				hkdfName = "hkdf"
				if im.Name != nil {
					hkdfName = im.Name.Name
				}
			}
		}
		if hkdfName != "" && !slices.Contains(hkdfCallers, rel) {
			t.Errorf("%s imports HKDF: derive through keygen.Pairwise.Expand or datakey.Key.Expand", rel)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for _, v := range n.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, _ := strconv.Unquote(lit.Value); isLabel(s) {
							declared[s] = append(declared[s], fset.Position(lit.Pos()).String())
						}
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Expand" || len(n.Args) == 0 {
					return true
				}
				if lit, ok := n.Args[0].(*ast.BasicLit); ok {
					t.Errorf("%s: Expand(%s): use a declared label constant", fset.Position(n.Pos()), lit.Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 || len(declared) < len(keygen.Labels) {
		t.Fatalf("read %d files, found %d labels: the scan would prove nothing", files, len(declared))
	}
	for l, where := range declared {
		if len(where) > 1 {
			t.Errorf("label %q declared %d times: %s", l, len(where), strings.Join(where, ", "))
		}
	}
	for _, l := range append([]string{keygen.LabelPairwise}, keygen.Labels...) {
		if len(declared[l]) != 1 {
			t.Errorf("keygen label %q is not declared exactly once as a constant (%v)", l, declared[l])
		}
	}
}

func isLabel(s string) bool {
	return strings.HasPrefix(s, "orderseal-v") && len(s) > len("orderseal-v1-") && !strings.ContainsAny(s, " %")
}

// Info is length-delimited: it parses back into exactly its label and
// contexts, so two derivations with different labels or contexts never
// share an info string.
func TestInfoDelimited(t *testing.T) {
	cases := [][]string{
		{keygen.LabelHTTP}, {keygen.LabelHTTPKeyID}, {keygen.LabelHTTP, "-keyid"},
		{keygen.LabelSection, "issuer", "ord_1"}, {keygen.LabelSection, "issuerord_1"},
		{keygen.LabelSection, "", "issuer", "ord_1"}, {keygen.LabelReveal, strings.Repeat("x", 300)},
	}
	seen := map[string]int{}
	for i, c := range cases {
		info := keygen.Info(c[0], c[1:]...)
		var got []string
		for rest := info; len(rest) > 0; {
			if len(rest) < 2 {
				t.Fatalf("case %d: trailing byte", i)
			}
			n := int(binary.BigEndian.Uint16(rest))
			if len(rest) < 2+n {
				t.Fatalf("case %d: field overruns the info", i)
			}
			got, rest = append(got, string(rest[2:2+n])), rest[2+n:]
		}
		if !slices.Equal(got, c) {
			t.Errorf("case %d: Info parses back as %q, want %q", i, got, c)
		}
		if j, dup := seen[string(info)]; dup {
			t.Errorf("cases %d and %d share an info", j, i)
		}
		seen[string(info)] = i
	}
}

// An unknown sub-key label is a programming error.
func TestExpandUnknownLabel(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Expand with an undeclared label did not panic")
		}
	}()
	var p keygen.Pairwise
	p.Expand("orderseal-v1-undeclared")
}

func TestValidSuiteName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{keygen.SuiteOS1, true},
		{"OS2-BLOM25519+SOKBLS12381+XWING-HKDFSHA256-XCHACHA20POLY1305", true},
		{"NULL-RELAY-BENCHMARK-ONLY", true},
		{"A", true},
		{"", false}, {"os1", false}, {"-OS1", false}, {"OS1-", false}, {"OS1--X", false},
		{"OS1+-X", false}, {"OS1 X", false}, {"OS1_X", false}, {strings.Repeat("A", keygen.MaxSuiteLen+1), false},
	} {
		if got := keygen.ValidSuiteName(tc.name); got != tc.ok {
			t.Errorf("ValidSuiteName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
