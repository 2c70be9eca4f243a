package merchant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"orderseal/internal/cli"
	"orderseal/internal/outbox"
	"orderseal/merchant/store"
)

// OutboxJob is one relay job as 'merchant outbox -json' prints it: what was
// tried, how often, and why it failed — never the payload.
type OutboxJob struct {
	Kind        string `json:"kind"`
	OrderID     string `json:"order_id"`
	Attempts    int    `json:"attempts"`
	State       string `json:"state"`
	NextAttempt string `json:"next_attempt,omitempty"` // pending jobs only
	LastError   string `json:"last_error,omitempty"`
	Created     string `json:"created"`
}

// maxErrorColumn bounds the last error in the table; -json prints it whole.
const maxErrorColumn = 120

func cmdOutbox(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "outbox", "-db FILE [-state pending|failed|done] [-json]", stdio,
		prog+" outbox -db merchant.db -state failed")
	db := fs.String("db", "", "the merchant database")
	state := fs.String("state", "", "only jobs in this state: pending, failed (given up for good) or done")
	asJSON := fs.Bool("json", false, "JSON output")
	if err := cli.Parse(fs, args, "db"); err != nil {
		return err
	}
	switch *state {
	case "", outbox.StatePending, outbox.StateFailed, outbox.StateDone:
	default:
		return cli.Usagef("use -state pending, failed or done", "-state %.32q is not a job state", *state)
	}
	st, err := OpenReader(ctx, *db)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return cli.WithHint(fmt.Errorf("%s: no such database", *db), "'"+prog+" serve' creates it")
	case errors.Is(err, store.ErrNotMigrated):
		return cli.WithHint(err, "run '"+prog+" serve -db "+*db+"' once so it upgrades the database")
	case err != nil:
		return err
	}
	defer st.Close()
	entries, err := st.Outbox().List(ctx, *state)
	if err != nil {
		return err
	}
	jobs := make([]OutboxJob, 0, len(entries))
	for _, e := range entries {
		j := OutboxJob{Kind: e.Kind, OrderID: e.Key, Attempts: e.Attempts, State: e.State,
			LastError: e.LastError, Created: e.Created.Format(time.RFC3339)}
		if e.State == outbox.StatePending {
			j.NextAttempt = e.NextAt.Format(time.RFC3339)
		}
		jobs = append(jobs, j)
	}
	if *asJSON {
		return json.NewEncoder(stdio.Out).Encode(jobs)
	}
	tw := tabwriter.NewWriter(stdio.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tORDER\tATTEMPTS\tSTATE\tNEXT ATTEMPT\tLAST ERROR")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", j.Kind, j.OrderID, j.Attempts, j.State, dash(j.NextAttempt), dash(column(j.LastError)))
	}
	return tw.Flush()
}

// column fits an error into one table cell: one line, printable, bounded.
func column(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		s = strconv.Quote(s) // control or invalid bytes: show them escaped
	}
	if len(s) > maxErrorColumn {
		cut := maxErrorColumn
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
