package sqlitex

import (
	"database/sql"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// CommitSizes is how many transactions each group commit of this process
// carried (one WAL sync each), by database file name (its base name, as
// the operator named it: never a value). Every daemon serves it on
// /metrics (web.NewMetrics).
var CommitSizes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "orderseal_sqlite_group_commit_transactions",
	Help:    "Transactions one group commit carried (one WAL sync for all of them), by SQLite database file.",
	Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
}, []string{"database"})

// names holds the file name of every database Open opened, for CommitSizes.
var names sync.Map // *sql.DB → string

func nameOf(db *sql.DB) string {
	if n, ok := names.Load(db); ok {
		return n.(string)
	}
	return "other"
}

func remember(db *sql.DB, path string) { names.Store(db, filepath.Base(path)) }
