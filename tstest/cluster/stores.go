package cluster

import (
	"context"
	"fmt"

	"orderseal/carrier"
	carrierstore "orderseal/carrier/store"
	"orderseal/internal/outbox"
	"orderseal/issuer"
	issuerstore "orderseal/issuer/store"
	"orderseal/merchant"
	merchantstore "orderseal/merchant/store"
	"orderseal/vault"
	vaultstore "orderseal/vault/store"
)

// DSN is the store a party's daemon runs on: "merchant", "issuer",
// "carrier", or "vault" (its index). The harness reads it only through the
// store's read interface, opened read-only; only Seed writes it directly.
func (c *Cluster) DSN(name string) string {
	if pg := c.cfg.Postgres; pg != nil {
		switch name {
		case Merchant:
			return pg.Merchant
		case Issuer:
			return pg.Issuer
		case Carrier:
			return pg.Carrier
		case Vault:
			return pg.VaultIndex
		}
	}
	switch name {
	case Merchant:
		return c.Path("merchant", "merchant.db")
	case Issuer:
		return c.Path("issuer", "issuer.db")
	case Carrier:
		return c.Path("carrier", "carrier.db")
	case Vault:
		return c.Path("vault", "index.db")
	}
	panic(fmt.Sprintf("cluster: no store %q", name))
}

// merchantReader opens the merchant's store read-only.
func (c *Cluster) merchantReader(ctx context.Context) (merchantstore.Reader, error) {
	return merchant.OpenReader(ctx, c.DSN(Merchant))
}

// issuerReader opens the issuer's store read-only, without the card key:
// nothing the harness reads needs a card number.
func (c *Cluster) issuerReader(ctx context.Context) (issuerstore.Store, error) {
	return issuer.OpenStore(ctx, c.DSN(Issuer), issuerstore.Options{ReadOnly: true})
}

// carrierReader opens the carrier's store read-only.
func (c *Cluster) carrierReader(ctx context.Context) (carrierstore.Reader, error) {
	return carrier.OpenReader(ctx, c.DSN(Carrier))
}

// vaultIndexReader opens the vault's index read-only.
func (c *Cluster) vaultIndexReader(ctx context.Context) (vaultstore.IndexReader, error) {
	return vault.OpenIndexReader(ctx, c.DSN(Vault))
}

// PendingAttempts adds up the failed attempts of the merchant's pending
// relay jobs of kind.
func (c *Cluster) PendingAttempts(ctx context.Context, kind string) (int, error) {
	mst, err := c.merchantReader(ctx)
	if err != nil {
		return 0, err
	}
	defer mst.Close()
	es, err := mst.Outbox().List(ctx, outbox.StatePending)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		if e.Kind == kind {
			n += e.Attempts
		}
	}
	return n, nil
}
