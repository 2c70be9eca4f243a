package cluster

import (
	"fmt"
	"strings"
)

// Postgres names the PostgreSQL databases of a cluster whose stores run on
// PostgreSQL (DESIGN.md §9), each a DSN that reaches it as its owner. The
// vault's index and data stores are separate databases under separate
// roles; its pending table stays a SQLite file on the vault host.
// VaultBackup may be empty (no backup data store).
type Postgres struct {
	Merchant, Issuer, Carrier          string
	VaultIndex, VaultData, VaultBackup string
}

// Nodes names n nodes of a daemon (Issuer, Carrier or Merchant): the
// daemon's own name, then "<name>-2", ….
func Nodes(daemon string, n int) []string {
	nodes := []string{daemon}
	for i := 2; i <= n; i++ {
		nodes = append(nodes, fmt.Sprintf("%s-%d", daemon, i))
	}
	return nodes
}

// KindOf is the daemon a node name belongs to: "issuer-2" is an Issuer
// node, "merchant" a Merchant one; a name of no daemon is itself.
func KindOf(name string) string {
	for _, d := range Daemons {
		if name == d || strings.HasPrefix(name, d+"-") {
			return d
		}
	}
	return name
}

// MerchantNodes names n merchant nodes: "merchant", then "merchant-2", ….
func MerchantNodes(n int) []string { return Nodes(Merchant, n) }

// IsMerchantNode reports whether name is one of MerchantNodes.
func IsMerchantNode(name string) bool { return KindOf(name) == Merchant }

// MerchantNodes lists the cluster's merchant nodes.
func (c *Cluster) MerchantNodes() []string { return c.NodesOf(Merchant) }

// NodesOf lists the cluster's nodes of a daemon: one, or several sharing
// its PostgreSQL database behind a Balancer (Config.Issuers, Carriers,
// Merchants).
func (c *Cluster) NodesOf(daemon string) []string { return Nodes(daemon, c.cfg.nodes(daemon)) }

// nodes is how many nodes of daemon the configuration runs.
func (cfg *Config) nodes(daemon string) int {
	switch daemon {
	case Merchant:
		return max(cfg.Merchants, 1)
	case Issuer:
		return max(cfg.Issuers, 1)
	case Carrier:
		return max(cfg.Carriers, 1)
	}
	return 1
}

// OnPostgres reports whether the cluster's stores run on PostgreSQL.
func (c *Cluster) OnPostgres() bool { return c.cfg.Postgres != nil }

// vaultData and vaultBackup are the DSNs of the vault's data stores.
func (c *Cluster) vaultData() string {
	if pg := c.cfg.Postgres; pg != nil {
		return pg.VaultData
	}
	return c.Path("vault", "data.db")
}

func (c *Cluster) vaultBackup() string {
	if pg := c.cfg.Postgres; pg != nil {
		return pg.VaultBackup
	}
	return c.Path("vault", "backup.db")
}

// vaultStoreFlags are the store flags of the vault's commands: index,
// data, backup, and on PostgreSQL the pending table's file.
func (c *Cluster) vaultStoreFlags() []string {
	f := []string{"-index", c.DSN(Vault), "-data", c.vaultData()}
	if b := c.vaultBackup(); b != "" {
		f = append(f, "-backup", b)
	}
	if c.OnPostgres() {
		f = append(f, "-pending", c.Path("vault", "pending.db"))
	}
	return f
}
