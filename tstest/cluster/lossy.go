package cluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// LossyProxy sits in front of one daemon and loses a share of its answers
// (issue 22): the request reaches the daemon, which acts on it and answers,
// and the proxy cuts the caller's connection instead of relaying the
// answer, as a network does when a 202 never comes back. Which answers are
// lost is drawn from a seed.
type LossyProxy struct {
	Name string
	srv  *httptest.Server
	rate float64

	mu  sync.Mutex
	rng *rand.Rand

	answered, lost atomic.Int64
}

// NewLossyProxy listens on a free loopback port and forwards to the daemon
// at addr (host:port), losing rate of the answers.
func NewLossyProxy(name, addr string, rate float64, seed uint64) (*LossyProxy, error) {
	target, err := url.Parse("http://" + addr)
	if err != nil {
		return nil, err
	}
	p := &LossyProxy{Name: name, rate: rate, rng: rand.New(rand.NewPCG(seed, 0x1055))}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the signature covers the path, not the host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// The daemon is down (killed): the caller sees a refused
			// connection, not an answer from the proxy.
			if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
				conn.Close()
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		lose := p.rng.Float64() < p.rate
		p.mu.Unlock()
		if !lose {
			p.answered.Add(1)
			rp.ServeHTTP(w, r)
			return
		}
		rp.ServeHTTP(discard{}, r) // the daemon answers; nobody hears it
		p.lost.Add(1)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})}}
	p.srv.Start()
	return p, nil
}

// URL is the proxy's base URL.
func (p *LossyProxy) URL() string { return p.srv.URL }

// Counts returns how many answers were relayed and how many lost.
func (p *LossyProxy) Counts() (answered, lost int64) { return p.answered.Load(), p.lost.Load() }

// Close stops the proxy.
func (p *LossyProxy) Close() { p.srv.Close() }

func (p *LossyProxy) String() string {
	a, l := p.Counts()
	return fmt.Sprintf("%s: %d answers lost of %d", p.Name, l, a+l)
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
