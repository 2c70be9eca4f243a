package cluster

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The balancer spreads requests over its nodes in turn, passes a request's
// body to whichever node takes it, goes on to the next node when one
// refuses the connection, and answers 502 when a node takes a request and
// dies without answering.
func TestBalancer(t *testing.T) {
	node := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, name+":"+string(b))
		}))
	}
	a, b := node("a"), node("b")
	defer a.Close()
	defer b.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close() // refuses connections from now on
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	}))
	defer hangup.Close()

	tests := []struct {
		name   string
		nodes  []string
		want   []string // answers to consecutive POSTs
		status int
	}{
		{"round robin", []string{a.URL, b.URL}, []string{"b:x", "a:x", "b:x", "a:x"}, http.StatusOK},
		{"a node down is skipped", []string{a.URL, deadURL, b.URL}, []string{"b:x", "b:x", "a:x", "b:x"}, http.StatusOK},
		{"a node that hangs up", []string{hangup.URL}, []string{"", ""}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, err := NewBalancer("127.0.0.1:0", tt.nodes)
			if err != nil {
				t.Fatal(err)
			}
			defer lb.Close()
			for i, want := range tt.want {
				resp, err := http.Post(lb.URL()+"/v1/orders", "application/json", strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.status || (tt.status == http.StatusOK && string(got) != want) {
					t.Errorf("request %d: %d %q, want %d %q", i, resp.StatusCode, got, tt.status, want)
				}
			}
		})
	}
}
