package merchant

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

func TestBundleCache(t *testing.T) {
	data, err := os.ReadFile("../order/testdata/bundle_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Bundle json.RawMessage `json:"bundle"`
	}
	if err := json.Unmarshal(data, &v); err != nil || len(v.Bundle) == 0 {
		t.Fatalf("bundle_v1.json holds no bundle: %v", err)
	}
	raw := []byte(v.Bundle)
	var c bundleCache
	b1, err := c.parse("o1", raw, false)
	if err != nil {
		t.Fatal(err)
	}
	if b2, err := c.parse("o1", append([]byte(nil), raw...), false); err != nil || b2 != b1 {
		t.Fatalf("same bytes again: %p %v, want the cached %p", b2, err, b1)
	}
	// Other bytes under the same id (the bundle retained after
	// authorization) are parsed, not served from the cache.
	other := append([]byte(" "), raw...)
	b3, err := c.parse("o1", other, true)
	if err != nil || b3 == b1 {
		t.Fatalf("other bytes: %p %v, want a new parse", b3, err)
	}
	// By version: the entry is the retained bundle now, not the one received.
	if b, ok := c.current("o1", true); !ok || b != b3 {
		t.Fatalf("current retained: %p %v, want %p", b, ok, b3)
	}
	if _, ok := c.current("o1", false); ok {
		t.Fatal("the retained bundle served as the one received")
	}
	if _, ok := c.current("o9", false); ok {
		t.Fatal("an order never cached served a bundle")
	}
	// The destination intake read stays with the order's entry when the
	// kept bundle replaces the one received.
	if _, ok := c.dest("o1"); ok {
		t.Fatal("a destination known before intake told one")
	}
	c.setDest("o1", "KR")
	c.put("o1", raw, b1, true)
	if d, ok := c.dest("o1"); !ok || d != "KR" {
		t.Fatalf("destination after the kept bundle: %q %v, want KR", d, ok)
	}
	if _, err := c.parse("o2", []byte(`{"v":1}`), false); err == nil {
		t.Fatal("a bad bundle parsed")
	}
	for i := range bundleCacheSize + 10 {
		c.put(fmt.Sprint("x", i), raw, b1, false)
	}
	if n := len(c.m); n > bundleCacheSize {
		t.Fatalf("%d bundles kept, bound %d", n, bundleCacheSize)
	}
}
