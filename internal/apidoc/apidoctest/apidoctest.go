// Package apidoctest is each daemon's TestOpenAPI: its committed document,
// its route table and its router agree, and the document is what a client
// fetches, unsigned, at apiroute.DocPath.
package apidoctest

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"orderseal/internal/apidoc"
	"orderseal/internal/apiroute"
)

// Run checks a's committed document against the routes the server at base
// answers (served) and fetches it from there.
func Run(t *testing.T, a apiroute.API, committed []byte, served []string, base string) {
	t.Helper()
	if err := apidoc.Check(a, committed, served); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + apiroute.DocPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, committed) {
		t.Fatalf("GET %s: %s %q, %d bytes: want 200 with the committed document", apiroute.DocPath, resp.Status, resp.Header.Get("Content-Type"), len(body))
	}
	if resp.Header.Get("Orderseal-Signature") != "" {
		t.Fatal("the document is answered signed: it is public")
	}
	post, err := http.Post(base+apiroute.DocPath, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST %s: %s, want 405", apiroute.DocPath, post.Status)
	}
}
