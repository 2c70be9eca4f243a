package issuer_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orderseal/internal/signedhttp"
	"orderseal/issuer"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/tstest/keys"
	"orderseal/tstest/pgtest"
	"orderseal/tstest/webtest"
)

// issuerNode is one issuer process of several sharing one PostgreSQL
// database: its own store (its own pool), server, log and listener.
type issuerNode struct {
	st  store.Store
	srv *issuer.Server
	ts  *httptest.Server
	log *syncBuffer
}

// TestNodesShareOneDatabase is issue 17's "issuer runs as several nodes"
// at the daemon level: two issuer nodes on one PostgreSQL database, the
// merchant's requests spread over both. A bundle approved by one node is
// answered the same by the other (same auth code, the card debited once),
// the same bundle sent to both at once is decided once, a request one
// node accepted is refused by the other as a replay (the nonce memory is
// the database's), and the hold-expiry sweep running on both nodes at
// once releases every lapsed hold exactly once.
func TestNodesShareOneDatabase(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.New(t)
	ck, err := store.CreateCardKey(filepath.Join(t.TempDir(), "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	const hold = time.Hour
	var nodes [2]*issuerNode
	for i := range nodes {
		n := &issuerNode{log: &syncBuffer{}}
		logger := slog.New(slog.NewJSONHandler(n.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if n.st, err = issuer.OpenStore(ctx, pg.URL(), store.Options{CardKey: ck, Now: clk.Now, Logger: logger}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.st.Close() })
		n.srv = issuer.NewServer(keys.Keys(t, keys.Bank), n.st, issuer.Options{Logger: logger, Now: clk.Now, Hold: hold,
			Verifier: []signedhttp.Option{signedhttp.WithClock(clk.Now)}})
		n.ts = httptest.NewServer(n.srv.Handler())
		t.Cleanup(n.ts.Close)
		nodes[i] = n
	}
	const limit = 100 * orderTotal
	card, err := nodes[0].st.AddCard(ctx, store.NewCard{Number: visa, Cardholder: keys.Alice, Expiry: "2031-12", Currency: "EUR", Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	client := func(i int) *api.Client {
		c, err := api.NewClient(keys.Keys(t, keys.Shop), nodes[i].ts.URL, keys.Bank, &http.Client{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	shop := [2]*api.Client{client(0), client(1)}
	available := func() int64 {
		t.Helper()
		c, err := nodes[1].st.Card(ctx, card.ID)
		if err != nil {
			t.Fatal(err)
		}
		return c.Available
	}

	// Each order approved by one node, its retry answered by the other.
	const orders = 6
	for i := range orders {
		b := seal(t, orderOpts{})
		a, err := shop[i%2].Authorize(ctx, b, orderTotal, "EUR", "")
		if err != nil || a.Decision != api.Approved {
			t.Fatalf("order %d on node %d: %+v %v", i, i%2+1, a, err)
		}
		again, err := shop[(i+1)%2].Authorize(ctx, b, orderTotal, "EUR", "")
		if err != nil || again.AuthCode != a.AuthCode || again.Decision != a.Decision {
			t.Fatalf("order %d's retry on node %d: %+v %v, want auth code %s", i, (i+1)%2+1, again, err, a.AuthCode)
		}
	}
	if av := available(); av != limit-orders*orderTotal {
		t.Fatalf("available %d after %d approvals and their retries, want %d", av, orders, limit-orders*orderTotal)
	}

	// One bundle sent to both nodes at once: one decision, one debit.
	b := seal(t, orderOpts{})
	var wg sync.WaitGroup
	var answers [2]*api.Authorization
	var errs [2]error
	for i := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i], errs[i] = shop[i].Authorize(ctx, b, orderTotal, "EUR", "") }()
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil || answers[i].Decision != api.Approved || answers[i].AuthCode != answers[0].AuthCode {
			t.Fatalf("concurrent authorize on node %d: %+v %v (node 1: %+v)", i+1, answers[i], errs[i], answers[0])
		}
	}
	const approved = orders + 1
	if av := available(); av != limit-approved*orderTotal {
		t.Fatalf("available %d after the concurrent pair, want %d: debited twice", av, limit-approved*orderTotal)
	}
	if as, err := nodes[0].st.Authorizations(ctx, store.AuthFilter{Merchant: keys.Shop}); err != nil || len(as) != approved {
		t.Fatalf("%d authorizations stored (%v), want %d", len(as), err, approved)
	}

	// A request node 1 accepted is a replay at node 2.
	tap := &webtest.Tap{}
	raw := signedhttp.NewClient(keys.Keys(t, keys.Shop), &http.Client{Transport: tap}, signedhttp.WithClientClock(clk.Now))
	if resp, err := raw.Do(ctx, keys.Bank, http.MethodGet, nodes[0].ts.URL+api.PathAuthorizations+b.OrderID, nil); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("genuine request on node 1: %v %v", resp, err)
	}
	if status, code := webtest.Replay(t, nil, nodes[1].ts.URL, tap.Last(t)); status != http.StatusUnauthorized || code != signedhttp.CodeReplayedNonce {
		t.Fatalf("replay on node 2: HTTP %d %q, want 401 %q", status, code, signedhttp.CodeReplayedNonce)
	}

	// The hold period passes; both nodes sweep at once, as every issuer
	// serve does, and each node's own sweeps race the other's.
	clk.Set(time.Now().Add(hold + time.Minute))
	sweep, stop := context.WithCancel(ctx)
	for _, n := range nodes {
		wg.Add(2)
		go func() { defer wg.Done(); n.srv.ExpireHolds(sweep, time.Millisecond) }()
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := n.st.ExpireHolds(sweep); err != nil && sweep.Err() == nil {
					t.Error(err)
				}
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for available() != limit && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the sweeps go on past the last release
	stop()
	wg.Wait()
	if av := available(); av != limit {
		t.Fatalf("available %d after every hold lapsed, want the limit %d (more: a hold released twice)", av, limit)
	}
	released := 0
	for _, n := range nodes {
		released += bytes.Count(n.log.Bytes(), []byte(`"msg":"authorization expired"`))
	}
	if released != approved {
		t.Fatalf("%d releases logged by the two nodes for %d lapsed holds, want one each", released, approved)
	}
	if a, err := nodes[0].st.Authorization(ctx, keys.Shop, b.OrderID); err != nil || a.State() != api.StateExpired {
		t.Fatalf("%s after the sweep: %+v %v", b.OrderID, a, err)
	}
}
