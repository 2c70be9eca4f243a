package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/dsn"
	"orderseal/internal/sqlitex"
	"orderseal/vault/api"
	"orderseal/vault/store"
	"orderseal/vault/store/postgres"
	"orderseal/vault/store/sqlite"
)

// StoreConfig says where the vault's stores are, as DSNs ("sqlite:PATH" or
// a bare path, or postgres://… with the index and each data store a
// database under a role of its own; the pending table is then a SQLite
// file on the vault host, named by Pending). Index, Data and DataKey are
// required.
type StoreConfig struct {
	Index, Data string
	Backup      string           // optional backup data store, written through
	Pending     string           // "": the backend's default, beside the index
	DataKey     *store.DataKey   // never stored in any database
	Now         func() time.Time // nil: time.Now
	Logger      *slog.Logger     // nil: discard
	// AllowDegraded starts the vault when a data store cannot be created
	// or opened (writes wait in the pending table); otherwise that fails.
	AllowDegraded bool
	Observe       store.Observer // the store's metrics hooks
}

// OpenStore opens the vault's stores with the backend the index DSN's
// scheme names: the one place a backend is chosen.
func OpenStore(ctx context.Context, cfg StoreConfig) (*store.Store, error) {
	d, err := dsn.Parse(cfg.Index)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return dsn.Open(d, func() (*store.Store, error) {
		return sqlite.Open(ctx, sqlite.Config{Index: cfg.Index, Data: cfg.Data, Backup: cfg.Backup, Pending: cfg.Pending,
			DataKey: cfg.DataKey, Now: cfg.Now, Logger: cfg.Logger, AllowDegraded: cfg.AllowDegraded, Fold: fold, Observe: cfg.Observe})
	}, func() (*store.Store, error) {
		st, err := postgres.Open(ctx, postgres.Config{Index: cfg.Index, Data: cfg.Data, Backup: cfg.Backup, Pending: cfg.Pending,
			DataKey: cfg.DataKey, Now: cfg.Now, Logger: cfg.Logger, AllowDegraded: cfg.AllowDegraded, Fold: fold, Observe: cfg.Observe})
		if errors.Is(err, store.ErrInvalid) && cfg.Pending == "" {
			return nil, cli.WithHint(err, "pass -pending sqlite:PATH, a file on the vault host's own disk")
		}
		return st, err
	})
}

// fold is the vault's dedupe form of a value (api.Fold).
func fold(t store.TokenType, v []byte) []byte { return api.Fold(string(t), v) }

// OpenIndexReader opens the existing index at indexDSN read-only: it never
// creates one, and needs no data key.
func OpenIndexReader(ctx context.Context, indexDSN string) (store.IndexReader, error) {
	d, err := dsn.Parse(indexDSN)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return dsn.Open(d,
		func() (store.IndexReader, error) { return sqlite.OpenIndexReadOnly(ctx, indexDSN) },
		func() (store.IndexReader, error) { return postgres.OpenIndexReadOnly(ctx, indexDSN) })
}

// VerifyAudit opens the index at indexDSN read-only and verifies its audit
// chain (store.VerifyAudit).
func VerifyAudit(ctx context.Context, indexDSN string) (int, error) {
	idx, err := OpenIndexReader(ctx, indexDSN)
	if err != nil {
		return 0, err
	}
	defer idx.Close()
	return store.VerifyAudit(ctx, idx)
}

// AuditAnchors are where 'audit verify' finds checkpoints of the audit
// head: the vault's data stores (DSNs), and copies the merchant kept (JSON files).
type AuditAnchors struct {
	Backup, Data string
	Files        []string
}

// AuditReport is what an anchored verification covered.
type AuditReport struct{ Entries, Checkpoints int }

// VerifyAuditAnchored checks the index at indexDSN: SQLite's own
// consistency check of the file, the hash chain, every checkpoint found
// (MACed under dk; the log must reach it and agree with it) and every grant
// and reveal against the log's entries. The first failure is returned;
// checkpoint and cross-check failures wrap store.ErrAuditBroken.
func VerifyAuditAnchored(ctx context.Context, indexDSN string, dk *store.DataKey, anchors AuditAnchors) (AuditReport, error) {
	var rep AuditReport
	d, err := dsn.Parse(indexDSN)
	if err != nil {
		return rep, fmt.Errorf("vault index: %w", err)
	}
	switch d.Scheme {
	case dsn.SQLite:
		if err := sqlitex.CheckFile(ctx, d.Path); err != nil {
			return rep, fmt.Errorf("vault index %s: %w", d.Path, err)
		}
	case dsn.Postgres: // the server keeps its own pages consistent
	default:
		return rep, noBackend(d)
	}
	idx, err := OpenIndexReader(ctx, indexDSN)
	if err != nil {
		return rep, err
	}
	defer idx.Close()
	if rep.Entries, err = store.VerifyAudit(ctx, idx); err != nil {
		return rep, err
	}
	type found struct {
		where string
		cp    store.Checkpoint
	}
	var cps []found
	for _, s := range []struct{ name, dsn string }{{"backup", anchors.Backup}, {"primary", anchors.Data}} {
		if s.dsn == "" {
			continue
		}
		read := sqlite.ReadCheckpoint
		if sd, err := dsn.Parse(s.dsn); err == nil && sd.Scheme == dsn.Postgres {
			read = postgres.ReadCheckpoint
		}
		cp, ok, err := read(ctx, s.dsn)
		if err != nil {
			return rep, fmt.Errorf("vault %s data store: %w", s.name, err)
		}
		if ok {
			cps = append(cps, found{"the " + s.name + " data store", cp})
		}
	}
	for _, f := range anchors.Files {
		data, err := os.ReadFile(f)
		if err != nil {
			return rep, err
		}
		var cp store.Checkpoint
		if err := json.Unmarshal(data, &cp); err != nil {
			return rep, fmt.Errorf("checkpoint %s: %w", f, err)
		}
		cps = append(cps, found{f, cp})
	}
	if len(cps) == 0 && rep.Entries > 0 {
		return rep, fmt.Errorf("%w: %d entries but no checkpoint in the stores given: the checkpoint was removed, or the stores are not this vault's", store.ErrAuditBroken, rep.Entries)
	}
	for _, c := range cps {
		if err := store.VerifyCheckpoint(dk, c.cp); err != nil {
			return rep, fmt.Errorf("%s: %w", c.where, err)
		}
		if err := store.CompareCheckpoint(ctx, idx, c.cp, c.where); err != nil {
			return rep, err
		}
		rep.Checkpoints++
	}
	problems, err := store.CrossCheck(ctx, idx)
	if err != nil {
		return rep, err
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > 3 {
			more = fmt.Sprintf(" (and %d more)", len(problems)-3)
			problems = problems[:3]
		}
		return rep, fmt.Errorf("%w: %s%s", store.ErrAuditBroken, strings.Join(problems, "; "), more)
	}
	return rep, nil
}

func noBackend(d dsn.DSN) error {
	return cli.WithHint(fmt.Errorf("%w: the vault has no %s backend (%s)", dsn.ErrDSN, d.Scheme, d),
		"use sqlite:PATH, a bare file path or postgres://…")
}
