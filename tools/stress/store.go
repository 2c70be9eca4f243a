package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"orderseal/tstest/cluster"
	"orderseal/tstest/pgtest"
)

// throwawayPostgres starts a PostgreSQL server for one stress run (initdb
// in a temporary directory, a free loopback port, fsync on as SQLite's
// commits sync) with the cluster's databases, each owned by a role of its
// own; stop ends and removes it. pid is the server's postmaster.
func throwawayPostgres() (pg *cluster.Postgres, pid int, stop func(), err error) {
	srv, err := pgtest.Start(pgtest.Durable())
	if err != nil {
		return nil, 0, nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	if pid, err = srv.PID(); err != nil {
		srv.Stop()
		return nil, 0, nil, err
	}
	var urls [6]string
	for i := range urls {
		d, err := srv.NewDatabase()
		if err != nil {
			srv.Stop()
			return nil, 0, nil, err
		}
		urls[i] = d.URL
	}
	pg = &cluster.Postgres{Merchant: urls[0], Issuer: urls[1], Carrier: urls[2], VaultIndex: urls[3], VaultData: urls[4], VaultBackup: urls[5]}
	return pg, pid, func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stress load: PostgreSQL:", err)
		}
	}, nil
}

// storeNote is the setup line's note of the backend.
func (o *loadOptions) storeNote() string {
	if o.db == "" {
		return ""
	}
	return fmt.Sprintf(", %s, %d merchant nodes", o.db, o.merchants)
}

// cpuTimes reads the machine's busy and total CPU time, in clock ticks,
// from /proc/stat's first line (Linux).
func cpuTimes() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	for i, v := range f[1:min(len(f), 9)] { // user … steal; guest time is inside user already
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}
