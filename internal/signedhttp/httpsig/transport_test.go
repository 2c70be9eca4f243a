//go:build !js

package httpsig

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestPeerTransportReusesConnections: a Client given no transport keeps
// its connections to a peer open between waves of concurrent requests.
// With net/http's default of two idle connections per host, all but two
// of the first wave's closed and the second wave dialled 30 more.
func TestPeerTransportReusesConnections(t *testing.T) {
	var dialled atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := NewClient(&countingKeyring{}, &http.Client{}) // a timeout-less client, no transport of its own
	rt := c.rt.(netTransport)
	if rt.h.Transport != PeerTransport {
		t.Fatalf("transport %T, want PeerTransport", rt.h.Transport)
	}
	const concurrent = 32
	wave := func() {
		// Every request of a wave is in flight at once, so each needs a
		// connection of its own.
		var inFlight, wg sync.WaitGroup
		inFlight.Add(concurrent)
		for range concurrent {
			wg.Go(func() {
				inFlight.Done()
				inFlight.Wait()
				status, _, body, err := rt.roundTrip(context.Background(), http.MethodGet, srv.URL, nil, nil)
				if err != nil || status != http.StatusOK {
					t.Errorf("status %d, %v", status, err)
					return
				}
				io.Copy(io.Discard, body) // read to its end, as the Client does: the connection can then be reused
				body.Close()
			})
		}
		wg.Wait()
	}
	wave()
	first := dialled.Load()
	wave()
	if again := dialled.Load() - first; again > 2 {
		t.Fatalf("the second wave of %d requests dialled %d new connections (the first %d): idle ones were closed", concurrent, again, first)
	}
}
