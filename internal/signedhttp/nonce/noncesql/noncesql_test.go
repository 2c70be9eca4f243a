package noncesql_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/signedhttp/nonce/noncetest"
	"orderseal/internal/sqlitex"
)

func TestConformance(t *testing.T) {
	noncetest.Run(t, func(t *testing.T, now func() time.Time, quota int) nonce.Store {
		db, err := sqlitex.Open(filepath.Join(t.TempDir(), "n.db"), sqlitex.Immediate(), sqlitex.Serialized())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := sqlitex.Migrate(context.Background(), db, []string{noncesql.Migration}); err != nil {
			t.Fatal(err)
		}
		return noncesql.New(db, nonce.Fixed(quota), now)
	})
}
