package vault_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orderseal/internal/sqlitex"
	"orderseal/vault/api"
)

// takeAway removes dir the way an unmounted volume does, with a plain file
// in its place so nothing can be created there either (tests run as root,
// which file modes do not stop). restore puts it back.
func takeAway(t *testing.T, dir string) (restore func()) {
	t.Helper()
	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(away, dir); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}

// countRecords counts the records of a data store file, opened as an
// operator would.
func countRecords(t *testing.T, path string) int {
	t.Helper()
	db, err := sqlitex.Open(path, sqlitex.MustExist())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDataStoreOutageUnderLoad: while the primary data store is unreachable,
// 200 registrations from 16 concurrent clients over the signed HTTP API all
// succeed through the pending table (and repeats of them dedupe to the same
// token); once it returns, the flusher empties the pending table into both
// data stores, and every token reveals its value to its owner: none lost,
// none stored twice.
func TestDataStoreOutageUnderLoad(t *testing.T) {
	const (
		values  = 200
		workers = 16
		owners  = 8
		repeats = 40 // registrations of a value already registered during the outage
	)
	ctx := context.Background()
	e := newVaultEnv(t)
	restore := takeAway(t, filepath.Dir(e.dataPath))

	type job struct {
		owner string
		value []byte
		want  string // the token an earlier registration got, for repeats
	}
	type result struct {
		job
		token   string
		created bool
		err     error
	}
	ownerOf := func(i int) string { return fmt.Sprintf("cardholder:load%d@example.org", i%owners) }
	valueOf := func(i int) []byte { return addressJSON(fmt.Sprintf("%s %d Outage Street", canary, i)) }
	clients := map[string]*api.Client{} // safe for concurrent use
	for i := range owners {
		clients[ownerOf(i)] = e.client(t, ownerOf(i))
	}
	run := func(jobs []job) []result {
		in := make(chan job)
		out := make(chan result, len(jobs))
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for j := range in {
					res, err := clients[j.owner].Register(ctx, api.TypeAddress, "", false, j.value)
					r := result{job: j, err: err}
					if err == nil {
						r.token, r.created = res.Token, res.Created
					}
					out <- r
				}
			})
		}
		for _, j := range jobs {
			in <- j
		}
		close(in)
		wg.Wait()
		close(out)
		var all []result
		for r := range out {
			all = append(all, r)
		}
		return all
	}

	var first []job
	for i := range values {
		first = append(first, job{owner: ownerOf(i), value: valueOf(i)})
	}
	tokens := map[string]job{}
	for _, r := range run(first) {
		if r.err != nil || !r.created {
			t.Fatalf("registration during the outage: created %v, %v", r.created, r.err)
		}
		if _, dup := tokens[r.token]; dup {
			t.Fatalf("token %s issued twice", r.token)
		}
		tokens[r.token] = r.job
	}
	var again []job
	for tok, j := range tokens {
		if len(again) == repeats {
			break
		}
		again = append(again, job{owner: j.owner, value: j.value, want: tok})
	}
	for _, r := range run(again) {
		if r.err != nil || r.created || r.token != r.want {
			t.Fatalf("repeat during the outage: %s created %v (%v), want %s", r.token, r.created, r.err, r.want)
		}
	}
	st, err := e.st.Status(ctx)
	// Each value's token record and its shared record.
	if err != nil || st.PrimaryOK || !st.BackupOK || st.Pending != 2*values {
		t.Fatalf("during the outage: %+v %v; want the primary down and %d pending", st, err, 2*values)
	}

	// The primary returns; the flusher runs as 'vault serve' runs it.
	restore()
	fctx, stop := context.WithCancel(ctx)
	flushed := make(chan struct{})
	go func() { e.st.RunFlusher(fctx, 20*time.Millisecond); close(flushed) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.st.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 && st.PrimaryOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-flushed

	// Each value: its token's record and its shared record, no more.
	if n := countRecords(t, e.dataPath); n != 2*values {
		t.Fatalf("the primary holds %d records, want %d", n, 2*values)
	}
	if n := countRecords(t, e.backupPath); n != 2*values {
		t.Fatalf("the backup holds %d records, want %d", n, 2*values)
	}
	if d, err := e.st.Check(ctx); err != nil || len(d) != 0 {
		t.Fatalf("primary and backup differ: %v %v", d, err)
	}
	// Every owner lists exactly its tokens and reveals each one's value.
	byOwner := map[string]map[string][]byte{}
	for tok, j := range tokens {
		if byOwner[j.owner] == nil {
			byOwner[j.owner] = map[string][]byte{}
		}
		byOwner[j.owner][tok] = j.value
	}
	for owner, toks := range byOwner {
		c := clients[owner]
		list, err := c.List(ctx)
		if err != nil || len(list) != len(toks) {
			t.Fatalf("%s lists %d tokens (%v), want %d", owner, len(list), err, len(toks))
		}
		for _, entry := range list {
			value, ok := toks[entry.Token]
			if !ok {
				t.Fatalf("%s lists a token it never got: %s", owner, entry.Token)
			}
			got, err := c.RevealOwn(ctx, entry.Token)
			if err != nil {
				t.Fatalf("%s reveals %s: %v", owner, entry.Token, err)
			}
			want, err := api.Normalize(api.TypeAddress, value)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s reveals %s as %s, want %s (%v)", owner, entry.Token, got, want, err)
			}
		}
	}
	e.assertNoCanary(t)
}
