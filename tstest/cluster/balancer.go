package cluster

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer is the load balancer in front of a party's nodes
// (Config.Merchants, Issuers or Carriers > 1): each request goes to the next node in turn, and
// one a node refuses at connect — it is down, killed or restarting — goes
// on to the next, as a load balancer's "next upstream on connect error"
// does. A node that dies after it took a request is not retried: the
// caller gets 502 and decides, as it would behind a real balancer.
type Balancer struct {
	srv   *http.Server
	ln    net.Listener
	nodes []*url.URL
	next  atomic.Uint64
	rp    *httputil.ReverseProxy

	mu     sync.Mutex
	served []int64 // requests answered by each node
}

// NewBalancer listens on addr ("127.0.0.1:0" for any port) and spreads
// requests over the nodes' base URLs.
func NewBalancer(addr string, nodes []string) (*Balancer, error) {
	b := &Balancer{served: make([]int64, len(nodes))}
	for _, n := range nodes {
		u, err := url.Parse(n)
		if err != nil {
			return nil, err
		}
		b.nodes = append(b.nodes, u)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b.ln = ln
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	b.rp = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.Out.Host = r.In.Host }, // the signature covers the path, not the host
		Transport: &nextUpstream{b: b, tr: tr},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	b.srv = &http.Server{Handler: b.rp, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	return b, nil
}

// URL is the balancer's base URL.
func (b *Balancer) URL() string { return "http://" + b.ln.Addr().String() }

// Served is how many requests each node answered, in node order.
func (b *Balancer) Served() []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int64(nil), b.served...)
}

// Close stops the balancer.
func (b *Balancer) Close() error { return b.srv.Close() }

// nextUpstream sends a request to the nodes in turn until one accepts the
// connection.
type nextUpstream struct {
	b  *Balancer
	tr *http.Transport
}

func (n *nextUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
	}
	start := n.b.next.Add(1)
	var last error
	for i := range len(n.b.nodes) {
		k := int((start + uint64(i)) % uint64(len(n.b.nodes)))
		out := r.Clone(r.Context())
		u := n.b.nodes[k]
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		resp, err := n.tr.RoundTrip(out)
		if err == nil {
			n.b.mu.Lock()
			n.b.served[k]++
			n.b.mu.Unlock()
			return resp, nil
		}
		last = err
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			return nil, err // the node took the request and died: not ours to repeat
		}
	}
	return nil, last
}
