package center

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// A fixed 2-of-3 OS2 center (k=8, monthly epochs) in testdata/officers/:
// its files as init wrote them, and in vector.json the root its officers
// recover and the key it issues to one identity. Regenerate with
// `go test ./keygen/center -run TestOfficerVector -center.write-officer-vector`
// (the shares change each time: circl draws the polynomial's coefficients
// from crypto/rand; the root, from testReader("vector"), does not).

var writeOfficerVector = flag.Bool("center.write-officer-vector", false, "rewrite testdata/officers/")

const officerVectorDir = "testdata/officers"

type officerVector struct {
	Root     string `json:"root"`     // the root seed, hex
	Identity string `json:"identity"` // issued in Epoch
	Epoch    string `json:"epoch"`
	SOK      string `json:"sok"`  // its d1 || d2, hex
	Row0     string `json:"row0"` // the first element of its row, hex
}

func TestOfficerVector(t *testing.T) {
	if *writeOfficerVector {
		dir, c := newOfficerCenter(t, "vector")
		e, err := c.ForEpoch(testEpoch)
		if err != nil {
			t.Fatal(err)
		}
		k := mustIssue(t, e.master, "merchant:shop.example")
		v := officerVector{Root: hex.EncodeToString(e.root.seed[:]), Identity: k.Identity(), Epoch: k.Epoch(),
			SOK: hex.EncodeToString(k.SOK()), Row0: eltHex(rowOf(t, k)[0])}
		e.Close()
		os.RemoveAll(officerVectorDir)
		if err := os.MkdirAll(officerVectorDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{ParamsFile, CenterFile, LedgerFile, OfficerFile("alice"), OfficerFile("bob"), OfficerFile("carol")} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(officerVectorDir, f), b, 0o644)
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		os.WriteFile(filepath.Join(officerVectorDir, "vector.json"), append(b, '\n'), 0o644)
	}
	b, err := os.ReadFile(filepath.Join(officerVectorDir, "vector.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v officerVector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	// git keeps no 0600: copy the files, shares private.
	dir := copyDir(t, officerVectorDir)
	for _, o := range testOfficers {
		os.Chmod(filepath.Join(dir, OfficerFile(o)), 0o600)
	}
	if s, err := VerifyLedger(dir); err != nil || s.Lines != 1 {
		t.Fatalf("the vector's ledger: %+v, %v", s, err)
	}
	for _, pair := range [][]string{{"alice", "bob"}, {"bob", "carol"}, {"carol", "alice"}} {
		c := openWith(t, dir, pair...)
		if got := hex.EncodeToString(c.master.seed[:]); got != v.Root {
			t.Fatalf("%v recover root %s, want %s", pair, got, v.Root)
		}
		e, err := c.ForEpoch(v.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		k := mustIssue(t, e.master, v.Identity)
		if hex.EncodeToString(k.SOK()) != v.SOK || eltHex(rowOf(t, k)[0]) != v.Row0 {
			t.Fatalf("%v issue another key to %s", pair, v.Identity)
		}
		e.Close()
	}
}
