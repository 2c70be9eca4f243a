// Package checkout is the merchant's browser checkout (DESIGN.md §10): a
// page, its script and style embedded here, and the sealing program built
// from cmd/checkoutwasm with GOOS=js GOARCH=wasm (make build writes it and
// Go's wasm_exec.js to bin/web). The page loads both scripts with
// subresource integrity and the program by fetch with its SHA-384 checked
// before instantiation; the program is served gzip-compressed. Every
// response carries package secure's headers.
package checkout

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"orderseal/internal/web/secure"
)

//go:embed static
var static embed.FS

// Files of the build directory.
const (
	WASMFile     = "checkout.wasm"
	WASMExecFile = "wasm_exec.js"
)

// BuildFlags are the go build flags of the sealing program (make web, and
// the tests and benchmark that build it): no symbol table, and no inlining
// outside the standard library and circl's cryptography, which keeps the
// program under 3 MB gzip-compressed while its runtime and sealing stay
// inlined. The validator_novalidatefn tag is go-playground/validator's own
// switch for dead-code elimination: without it the library's validateFn
// check calls reflect's MethodByName, and the linker then keeps every
// exported method of every type in the program (2.4 MB of the 12 MB). The
// project's tags use no validateFn, which the tag turns into a panic;
// order's TestNoValidateFn holds them to that.
var BuildFlags = []string{"-trimpath", "-tags=" + ValidatorTag, "-ldflags=-s -w", "-gcflags=all=-l", "-gcflags=std=", "-gcflags=github.com/cloudflare/circl/...="}

// ValidatorTag is the build tag in BuildFlags that leaves go-playground/
// validator's validateFn check, and its MethodByName, out of the program.
const ValidatorTag = "validator_novalidatefn"

// ErrVaultURL is New's refusal of an Options.VaultURL that is not an
// http(s) URL with a host.
var ErrVaultURL = errors.New("the vault URL must be http(s)://host[:port]")

// Prefix is where the checkout is served.
const Prefix = "/checkout/"

// Options configure the checkout.
type Options struct {
	Dir        string // holds WASMFile and WASMExecFile
	MerchantID string // the identity the page's program pins
	// VaultURL is where the page asks the vault for her address labels
	// ("": no saved addresses, an inline address only); its origin is
	// added to the page's connect-src.
	VaultURL string
}

// asset is one file served with its integrity value.
type asset struct {
	body, gz  []byte
	mime      string
	integrity string
}

// Site serves the checkout.
type Site struct {
	opt    Options
	page   []byte
	assets map[string]*asset
	policy secure.Policy
}

func integrity(b []byte) string {
	h := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(h[:])
}

func gz(b []byte, level int) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, level)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// New reads the build directory and renders the page.
func New(opt Options) (*Site, error) {
	s := &Site{opt: opt, assets: map[string]*asset{}, policy: secure.Policy{WASM: true}}
	if opt.VaultURL != "" {
		u, err := url.Parse(opt.VaultURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("checkout: %.80q: %w", opt.VaultURL, ErrVaultURL)
		}
		s.policy.Connect = []string{u.Scheme + "://" + u.Host}
	}
	for name, mime := range map[string]string{WASMFile: "application/wasm", WASMExecFile: "text/javascript; charset=utf-8"} {
		b, err := os.ReadFile(filepath.Join(opt.Dir, name))
		if err != nil {
			return nil, fmt.Errorf("checkout: %w (make build writes it to bin/web)", err)
		}
		// make web compresses the program once (gzip -9); without that file
		// it is compressed here, faster and larger. A .gz of another build
		// fails the page's integrity check, visibly.
		z, err := os.ReadFile(filepath.Join(opt.Dir, name+".gz"))
		if errors.Is(err, os.ErrNotExist) {
			z, err = gz(b, gzip.DefaultCompression), nil
		}
		if err != nil {
			return nil, fmt.Errorf("checkout: %w", err)
		}
		s.assets[name] = &asset{body: b, gz: z, mime: mime, integrity: integrity(b)}
	}
	for name, mime := range map[string]string{"checkout.js": "text/javascript; charset=utf-8", "checkout.css": "text/css; charset=utf-8"} {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			return nil, err
		}
		s.assets[name] = &asset{body: b, gz: gz(b, gzip.BestCompression), mime: mime, integrity: integrity(b)}
	}
	tpl, err := template.ParseFS(static, "static/index.html")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = tpl.Execute(&buf, map[string]string{
		"MerchantID": opt.MerchantID, "VaultURL": opt.VaultURL,
		"JS": s.assets["checkout.js"].integrity, "CSS": s.assets["checkout.css"].integrity,
		"Exec": s.assets[WASMExecFile].integrity, "WASM": s.assets[WASMFile].integrity,
	})
	if err != nil {
		return nil, err
	}
	s.page = buf.Bytes()
	return s, nil
}

// WASMSize is the program's size as served: gzip-compressed, and raw.
func (s *Site) WASMSize() (compressed, raw int) {
	a := s.assets[WASMFile]
	return len(a.gz), len(a.body)
}

// ServeHTTP serves Prefix and the files under it; anything else is 404,
// with the same headers.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		secure.Headers(w, r, secure.Policy{}, true)
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if name == "" && r.URL.Path == Prefix {
		// The page holds the order being composed: never stored.
		secure.Headers(w, r, s.policy, true)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(s.page)
		return
	}
	a, ok := s.assets[name]
	if !ok || !strings.HasPrefix(r.URL.Path, Prefix) {
		secure.Headers(w, r, secure.Policy{}, true)
		http.NotFound(w, r)
		return
	}
	secure.Headers(w, r, secure.Policy{}, true)
	w.Header().Set("Content-Type", a.mime)
	w.Header().Set("Vary", "Accept-Encoding")
	body := a.body
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		body = a.gz
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

var _ fs.FS = static
