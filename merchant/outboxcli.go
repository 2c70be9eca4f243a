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
	"orderseal/internal/dsn"
	"orderseal/internal/outbox"
	"orderseal/merchant/api"
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
	RetryUntil  string `json:"retry_until,omitempty"`  // pending jobs: retried while their order's bundle (a void: its hold) is valid
	LastError   string `json:"last_error,omitempty"`
	Created     string `json:"created"`
}

// maxErrorColumn bounds the last error in the table; -json prints it whole.
const maxErrorColumn = 120

func cmdOutbox(ctx context.Context, args []string, stdio cli.Stdio) error {
	if len(args) > 0 && args[0] == "retry" {
		return cmdOutboxRetry(ctx, args[1:], stdio)
	}
	fs := cli.FlagSet(prog, "outbox", "-db FILE [-state pending|failed|done] [-json] | retry -db FILE [-order ID] [-kind KIND]", stdio,
		prog+" outbox -db merchant.db -state failed",
		prog+" outbox retry -db merchant.db   (re-drive every dead letter)")
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
		return cli.WithHint(err, "run '"+prog+" serve -db "+dsn.Redact(*db)+"' once so it upgrades the database")
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
			if o, err := st.Get(ctx, e.Key); err == nil {
				if until := retryUntil(o, e.Kind); !until.IsZero() {
					j.RetryUntil = until.UTC().Format(time.RFC3339)
				}
			}
		}
		jobs = append(jobs, j)
	}
	if *asJSON {
		return json.NewEncoder(stdio.Out).Encode(jobs)
	}
	tw := tabwriter.NewWriter(stdio.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tORDER\tATTEMPTS\tSTATE\tNEXT ATTEMPT\tRETRY UNTIL\tLAST ERROR")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", j.Kind, j.OrderID, j.Attempts, j.State, dash(j.NextAttempt), dash(j.RetryUntil), dash(column(j.LastError)))
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

// runsFrom is the order state each relay job works from: a dead letter of
// an order that has moved on (failed, its hold released) has nothing left
// to do, and re-driving it would only mark it done.
var runsFrom = map[string]string{jobAuthorize: api.StateReceived, jobGrant: api.StateAuthorized, jobBook: api.StateAuthorized}

// cmdOutboxRetry re-drives dead letters: failed jobs go back to pending,
// due now, attempts reset, and a running merchant picks them up at its next
// poll. Every job stays idempotent on the far side, so a re-driven job that
// had in fact reached its peer changes nothing there.
func cmdOutboxRetry(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "outbox retry", "-db FILE [-order ID] [-kind authorize|grant|book|void]", stdio,
		prog+" outbox retry -db merchant.db",
		prog+" outbox retry -db merchant.db -order ord_… -kind void")
	db := fs.String("db", "", "the merchant database")
	only := fs.String("order", "", "only this order's dead letters")
	kind := fs.String("kind", "", "only dead letters of this job kind")
	if err := cli.Parse(fs, args, "db"); err != nil {
		return err
	}
	switch *kind {
	case "", jobAuthorize, jobGrant, jobBook, jobVoid, jobCapture, jobRefund, jobRelease:
	default:
		return cli.Usagef("use -kind authorize, grant, book, void, capture, refund or release", "-kind %.32q is not a relay job", *kind)
	}
	st, err := openRunning(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	dead, err := st.Outbox().List(ctx, outbox.StateFailed)
	if err != nil {
		return err
	}
	redriven, skipped := 0, 0
	for _, e := range dead {
		if (*only != "" && e.Key != *only) || (*kind != "" && e.Kind != *kind) {
			continue
		}
		ok, why, err := redriveDead(ctx, st, e, time.Now())
		if err != nil {
			return err
		}
		if why != "" {
			fmt.Fprintf(stdio.Out, "%s\t%s\tskipped: %s\n", e.Kind, e.Key, why)
			skipped++
			continue
		}
		if ok {
			fmt.Fprintf(stdio.Out, "%s\t%s\tre-driven (was: %s)\n", e.Kind, e.Key, column(e.LastError))
			redriven++
		}
	}
	fmt.Fprintf(stdio.Err, "%s: %d dead letters re-driven, %d skipped; a running merchant picks them up at its next poll\n", prog, redriven, skipped)
	if redriven == 0 && skipped == 0 {
		return cli.WithHint(errors.New("no dead letter matches"), prog+" outbox -db "+dsn.Redact(*db)+" -state failed lists them")
	}
	return nil
}

// redriveDead re-drives one dead letter unless its order has moved on from
// the state the job works from; skipped says why it was left alone. 'merchant
// outbox retry' and the dashboard's retry both follow this rule. redriven
// is false, with no reason, for a job another process re-drove first.
func redriveDead(ctx context.Context, st store.Store, e outbox.Entry, now time.Time) (redriven bool, skipped string, err error) {
	if want, ok := runsFrom[e.Kind]; ok {
		o, err := st.Get(ctx, e.Key)
		if err != nil {
			return false, "", fmt.Errorf("order %s: %w", e.Key, err)
		}
		if o.State != want {
			return false, fmt.Sprintf("the order is %s (%s)", o.State, dash(o.Reason)), nil
		}
	}
	redriven, err = st.Outbox().Redrive(ctx, e.ID, now)
	return redriven, "", err
}
