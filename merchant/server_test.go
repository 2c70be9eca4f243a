package merchant_test

import (
	"context"
	"path/filepath"
	"testing"

	"orderseal/keygen"
	"orderseal/merchant"
	"orderseal/tstest/keys"
)

func TestParsePeer(t *testing.T) {
	tests := []struct {
		in   string
		role keygen.Role
		want merchant.Peer
		ok   bool
	}{
		{"issuer:bank.example=http://127.0.0.1:8444/", "issuer", merchant.Peer{Identity: "issuer:bank.example", URL: "http://127.0.0.1:8444"}, true},
		{"carrier:parcel.example=https://post.example", "carrier", merchant.Peer{Identity: "carrier:parcel.example", URL: "https://post.example"}, true},
		{"issuer:bank.example", "issuer", merchant.Peer{}, false},
		{"carrier:parcel.example=http://x", "issuer", merchant.Peer{}, false},
		{"bank=http://x", "issuer", merchant.Peer{}, false},
		{"issuer:bank.example=ftp://x", "issuer", merchant.Peer{}, false},
		{"issuer:bank.example=http://", "issuer", merchant.Peer{}, false},
		{"=http://x", "issuer", merchant.Peer{}, false},
	}
	for _, tc := range tests {
		got, err := merchant.ParsePeer(tc.in, tc.role)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePeer(%q, %q) = %+v, %v", tc.in, tc.role, got, err)
		}
	}
}

func TestNewServerRefuses(t *testing.T) {
	st, err := merchant.OpenStore(context.Background(), filepath.Join(t.TempDir(), "m.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	good := func() merchant.Config {
		return merchant.Config{Keys: keys.Keys(t, keys.Shop), Store: st, PublicURL: "http://127.0.0.1:1",
			Carrier: merchant.Peer{Identity: keys.Parcel, URL: "http://127.0.0.1:2"},
			Issuers: []merchant.Peer{{Identity: keys.Bank, URL: "http://127.0.0.1:3"}},
			Vault:   merchant.Peer{Identity: keys.Vault, URL: "http://127.0.0.1:4"}}
	}
	if _, err := merchant.NewServer(good()); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*merchant.Config){
		"a carrier's key":       func(c *merchant.Config) { c.Keys = keys.Keys(t, keys.Parcel) },
		"no issuer":             func(c *merchant.Config) { c.Issuers = nil },
		"an issuer that is not": func(c *merchant.Config) { c.Issuers[0].Identity = keys.Vault },
		"a carrier that is not": func(c *merchant.Config) { c.Carrier.Identity = keys.Bank },
		"a vault that is not":   func(c *merchant.Config) { c.Vault.Identity = keys.Parcel },
		"a bad public URL":      func(c *merchant.Config) { c.PublicURL = "127.0.0.1:8080" },
		"a bad carrier URL":     func(c *merchant.Config) { c.Carrier.URL = "" },
	} {
		cfg := good()
		edit(&cfg)
		if _, err := merchant.NewServer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
