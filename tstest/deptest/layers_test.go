package deptest

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

// layers is the house from the top floor down: each top-level folder may
// import only folders on floors below it (README.md, "Structure"). Folders
// on one floor do not import each other.
var layers = [][]string{
	{"cmd"},
	{"tools", "e2e", "bench"},
	{"tstest"},
	{"cardholder"},
	{"merchant"},
	{"carrier"},
	{"issuer", "vault", "assisted"},
	{"order"},
	{"suite"},
	{"keygen"},
	{"internal"},
}

// upward are the imports allowed to run back up, each with its reason.
var upward = map[[2]string]string{
	{"internal", "keygen"}: "internal/signedhttp signs with sub-keys of keygen.Pairwise, the SDK's key type",
	{"keygen", "suite"}:    "the key center (keygen/center) issues keys for a suite of the registry; the SDK package keygen itself does not import suite",
}

// never are imports no layering allows, with their reason.
var never = map[[2]string]string{
	{"orderseal/merchant", "orderseal/vault"}: "the vault is a process of its own under separate credentials; cmd/merchant wires the merchant vault command",
}

// TestNever holds the package graph to the never list, directly or not.
func TestNever(t *testing.T) {
	for e, why := range never {
		out, err := exec.Command("go", "list", "-deps", e[0]).Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 20 {
			t.Fatalf("go list -deps %s gave %d packages: the check would prove nothing", e[0], len(deps))
		}
		if slices.Contains(deps, e[1]) {
			t.Errorf("%s depends on %s: %s", e[0], e[1], why)
		}
	}
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// folderGraph reads the module's non-test imports as edges between top-level folders.
func folderGraph(t *testing.T) map[[2]string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "orderseal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	edges := map[[2]string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		from := folder(p.ImportPath)
		for _, im := range p.Imports {
			if !strings.HasPrefix(im, "orderseal/") {
				continue
			}
			if to := folder(im); to != from {
				e := [2]string{from, to}
				edges[e] = append(edges[e], p.ImportPath+" → "+im)
			}
		}
	}
	if n < 40 || len(edges) < 20 {
		t.Fatalf("go list gave %d packages, %d folder edges: the check would prove nothing", n, len(edges))
	}
	return edges
}

func folder(importPath string) string {
	f, _, _ := strings.Cut(strings.TrimPrefix(importPath, "orderseal/"), "/")
	return f
}

func floorOf(f string) int {
	for i, l := range layers {
		if slices.Contains(l, f) {
			return i
		}
	}
	return -1
}

// TestLayers holds the import graph of top-level folders to the layers:
// every edge runs down, but for the listed exceptions. go test -v prints
// the graph.
func TestLayers(t *testing.T) {
	edges := folderGraph(t)
	var lines []string
	back := 0
	for e, why := range edges {
		a, b := floorOf(e[0]), floorOf(e[1])
		switch {
		case a < 0:
			t.Errorf("folder %s is on no floor: add it to layers", e[0])
		case b < 0:
			t.Errorf("folder %s is on no floor: add it to layers", e[1])
		case a < b:
			lines = append(lines, fmt.Sprintf("  %-10s → %s", e[0], e[1]))
		default:
			back++
			reason, ok := upward[e]
			lines = append(lines, fmt.Sprintf("  %-10s ↑ %s (%s)", e[0], e[1], cmpOr(reason, "NOT ALLOWED")))
			if !ok {
				t.Errorf("%s imports %s, on its own floor or above: %s", e[0], e[1], strings.Join(why, "; "))
			}
		}
	}
	for e := range upward {
		if _, ok := edges[e]; !ok {
			t.Errorf("allowed upward import %s → %s no longer exists: remove it from upward", e[0], e[1])
		}
	}
	sort.Strings(lines)
	t.Logf("%d folder edges, %d running back up:\n%s", len(edges), back, strings.Join(lines, "\n"))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
