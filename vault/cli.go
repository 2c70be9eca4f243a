package vault

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/sqlitex"
	"orderseal/internal/tick"
	"orderseal/internal/web"
	"orderseal/keygen"
	"orderseal/suite/keystore"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlite"
)

// Command runs "merchant vault …": the vault as a process of its own, with
// its own key, databases and data key.
func Command(ctx context.Context, prog string, args []string, stdio cli.Stdio) error {
	p := prog + " vault"
	code := cli.Dispatch(p, stdio, args, []cli.Command{
		{Name: "init", Summary: "create the vault data key file (0600)", Run: func(a []string) error { return cmdInit(p, a, stdio) }},
		{Name: "serve", Summary: "serve the vault API on signed requests", Run: func(a []string) error { return cmdServe(ctx, p, a, stdio) }},
		{Name: "check", Summary: "compare the primary and backup data stores", Run: func(a []string) error { return cmdCheck(ctx, p, a, stdio) }},
		{Name: "rotate", Summary: "re-issue tokens older than a period", Run: func(a []string) error { return cmdRotate(ctx, p, a, stdio) }},
		{Name: "audit", Summary: "audit verify: check the hash chain of the audit log", Run: func(a []string) error { return cmdAudit(ctx, p, a, stdio) }},
		keystore.Command(p, keygen.RoleVault, stdio),
	})
	if code != cli.ExitOK {
		return &cli.Error{Err: cli.ErrReported, Code: code}
	}
	return nil
}

type storeFlags struct{ index, data, backup, pending, dataKey *string }

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		index:   fs.String("index", "", "index database DSN or file (owner → tokens; no personal data)"),
		data:    fs.String("data", "", "data database DSN or file (token → sealed personal data)"),
		backup:  fs.String("backup", "", "backup data database DSN or file, written through (optional)"),
		pending: fs.String("pending", "", "pending table's SQLite file on this host (default: the index's file + .pending; required with a postgres:// index)"),
		dataKey: fs.String("data-key", "", "vault data key file (0600), from 'vault init'"),
	}
}

func (f storeFlags) open(ctx context.Context, stdio cli.Stdio, daemon string, allowDegraded bool, obs store.Observer) (*store.Store, error) {
	dk, err := store.LoadDataKey(*f.dataKey)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, StoreConfig{Index: *f.index, Data: *f.data, Backup: *f.backup, Pending: *f.pending,
		DataKey: dk, Logger: web.Logger(stdio.Err, daemon), AllowDegraded: allowDegraded, Observe: obs})
	if errors.Is(err, sqlite.ErrStoreUnreachable) && web.SQLiteFiles(*f.data, *f.backup) != nil {
		return nil, cli.WithHint(err, "create its directory or mount its volume; or pass -allow-degraded to serve with writes waiting in the pending table")
	}
	if errors.Is(err, sqlite.ErrStoreUnreachable) {
		return nil, cli.WithHint(err, "is its PostgreSQL server running, and does its role have rights there? or pass -allow-degraded to serve with writes waiting in the pending table")
	}
	if errors.Is(err, store.ErrAuditBroken) {
		return nil, cli.WithHint(err, "restore the index database from a backup; "+daemon+" does not start on an audit log that lost entries")
	}
	return st, err
}

func cmdInit(p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "init", "-data-key FILE", stdio, p+" init -data-key vault-data.key")
	path := fs.String("data-key", "", "data key file to create")
	if err := cli.Parse(fs, args, "data-key"); err != nil {
		return err
	}
	if _, err := store.CreateDataKey(*path); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "%s: data key written to %s (0600); keep it outside both databases' backups\n", p, *path)
	return nil
}

func cmdServe(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "serve", "-key FILE -index DB -data DB -data-key FILE [-backup DB] [-listen ADDR]", stdio,
		p+" serve -key vault.key -index vault-index.db -data vault-data.db -data-key vault-data.key -listen 127.0.0.1:8443")
	keyFlags := keystore.AddFlags(fs, "the vault's")
	sf := addStoreFlags(fs)
	serve := cli.AddServeFlags(fs, "127.0.0.1:8443", cli.ListenUsage)
	flushEvery := fs.Duration("flush-every", 2*time.Second, "how often pending records are moved to the data store")
	rotateEvery := fs.Duration("rotate-every", 0, "run rotation on this schedule (0: off)")
	rotateAge := fs.Duration("rotate-age", 90*24*time.Hour, "rotation re-issues tokens older than this")
	grace := fs.Duration("grace", 7*24*time.Hour, "old tokens keep resolving this long after rotation")
	degraded := fs.Bool("allow-degraded", false, "start even when a data store cannot be created or opened (writes wait in the pending table)")
	var origins cli.Strings
	fs.Var(&origins, "cors-origin", "a shop origin whose browser checkout may list and reveal its cardholder's own addresses, e.g. https://shop.example (repeatable; none: no page may)")
	stopProfile, err := serve.Parse(fs, args, "key", "index", "data", "data-key")
	if err != nil {
		return err
	}
	defer stopProfile()
	for _, o := range origins {
		if err := CheckOrigin(o); err != nil {
			return cli.Usagef("use -cors-origin https://shop.example", "-cors-origin %v", err)
		}
	}
	key, err := keyFlags.Open(keygen.RoleVault, time.Now())
	if err != nil {
		return err
	}
	defer key.Close()
	logger := web.LoggerAt(stdio.Err, "vault", serve.LogLevel).With("identity", key.Identity())
	pendingFile := *sf.pending
	if pendingFile == "" {
		pendingFile = *sf.index + ".pending"
	}
	files := web.SQLiteFiles(*sf.index, pendingFile, *sf.data, *sf.backup)
	if err := web.CheckStoresAtStart(ctx, files...); err != nil {
		return err
	}
	m := newMetrics()
	st, err := sf.open(ctx, stdio, "vault", *degraded, m.observer())
	if err != nil {
		return err
	}
	defer st.Close()
	// The flusher and the rotation stop before the store closes (defers
	// run last in, first out): neither is cut off mid-write.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { st.RunFlusher(ctx, *flushEvery) })
	if *rotateEvery > 0 {
		wg.Go(func() {
			tick.Every(ctx, *rotateEvery, func() {
				n, err := st.Rotate(ctx, *rotateAge, *grace)
				if err != nil {
					logger.Error("rotation failed", "err", err)
				} else if n > 0 {
					logger.Info("rotated tokens", "count", n)
				}
			})
		})
	}
	srv := NewServer(key, st, Options{Logger: logger, CORSOrigins: origins})
	d := web.Daemon{Logger: logger, Flags: serve, Files: files, Ready: []web.Check{web.StoreCheck(st.Ping)},
		Metrics: append(m.collectors(st), web.KeyCacheMetrics(key.CacheStats)...)}
	return d.Serve(ctx, nil, srv.Handler())
}

func cmdCheck(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "check", "-index DB -data DB -backup DB -data-key FILE", stdio)
	sf := addStoreFlags(fs)
	if err := cli.Parse(fs, args, "index", "data", "backup", "data-key"); err != nil {
		return err
	}
	st, err := sf.open(ctx, cli.Stdio{Err: io.Discard}, "vault-check", false, store.Observer{})
	if err != nil {
		return err
	}
	defer st.Close()
	diffs, err := st.Check(ctx)
	if err != nil {
		return err
	}
	real := 0
	for _, d := range diffs {
		fmt.Fprintf(stdio.Out, "%s\t%s\n", d.Kind, d.Token)
		if d.Kind != store.Orphan {
			real++
		}
	}
	if real > 0 {
		return fmt.Errorf("%d differences between the primary and backup data stores", real)
	}
	if n := len(diffs); n > 0 {
		fmt.Fprintf(stdio.Err, "%s: %d orphan records (no index entry: a registration killed mid-write); the vault sweeps them after %s\n",
			p, n, store.OrphanGrace)
	}
	fmt.Fprintf(stdio.Err, "%s: primary and backup data stores agree\n", p)
	return nil
}

func cmdRotate(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "rotate", "-index DB -data DB -data-key FILE [-backup DB] -older-than DURATION -grace DURATION", stdio)
	sf := addStoreFlags(fs)
	older := fs.Duration("older-than", 90*24*time.Hour, "re-issue tokens older than this")
	grace := fs.Duration("grace", 7*24*time.Hour, "old tokens keep resolving this long")
	if err := cli.Parse(fs, args, "index", "data", "data-key"); err != nil {
		return err
	}
	st, err := sf.open(ctx, cli.Stdio{Err: io.Discard}, "vault-rotate", true, store.Observer{})
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.Rotate(ctx, *older, *grace)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "%d\n", n)
	fmt.Fprintf(stdio.Err, "%s: rotated %d tokens\n", p, n)
	return nil
}

func cmdAudit(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	if len(args) == 0 || args[0] != "verify" {
		return cli.Usagef("usage: "+p+" audit verify -index DB -data-key FILE -backup DB", "expected 'verify'")
	}
	fs := cli.FlagSet(p, "audit verify", "-index DB -data-key FILE (-backup DB | -data DB) [-checkpoint FILE]…", stdio,
		p+" audit verify -index vault-index.db -data-key vault-data.key -backup backup/vault-data.db",
		p+" audit verify -index vault-index.db -data-key vault-data.key -data data/vault-data.db -checkpoint merchant-checkpoint.json")
	index := fs.String("index", "", "index database DSN or file holding the audit log")
	dataKey := fs.String("data-key", "", "vault data key file (0600): the checkpoints are MACed under it")
	backup := fs.String("backup", "", "backup data store holding the vault's audit checkpoint")
	data := fs.String("data", "", "primary data store (holds the checkpoint when the vault runs without a backup)")
	var files cli.Strings
	fs.Var(&files, "checkpoint", "a checkpoint the vault handed to the merchant ('merchant audit vault-checkpoint'), JSON (repeatable)")
	if err := cli.Parse(fs, args[1:]); err != nil {
		return err
	}
	if err := cli.Require(fs, "index"); err != nil {
		return err
	}
	if *backup == "" && *data == "" && len(files) == 0 {
		return cli.Usagef("pass -data-key and -backup DB (or -data DB, or -checkpoint FILE): the chain alone cannot show its newest entries deleted",
			"no audit checkpoint to compare the log with")
	}
	if err := cli.Require(fs, "data-key"); err != nil {
		return err
	}
	dk, err := store.LoadDataKey(*dataKey)
	if err != nil {
		return err
	}
	n, err := VerifyAuditAnchored(ctx, *index, dk, AuditAnchors{Backup: *backup, Data: *data, Files: files})
	if err != nil {
		if errors.Is(err, store.ErrAuditBroken) || errors.Is(err, sqlitex.ErrDamaged) || errors.Is(err, store.ErrCheckpoint) {
			return cli.WithHint(err, "restore the index database from a backup and compare; keep this copy for the investigation")
		}
		return err
	}
	fmt.Fprintf(stdio.Out, "audit chain verifies: %d entries, matching %d checkpoints; every grant and reveal has its entry\n", n.Entries, n.Checkpoints)
	return nil
}
