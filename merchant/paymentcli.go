package merchant

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"orderseal/internal/cli"
	"orderseal/internal/web"
	issuerapi "orderseal/issuer/api"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order/money"
)

// Codes the payment commands refuse with, the issuer's own: the command
// checks against the issuer's last answer (store.Payment) before it asks,
// and the issuer checks again against its own record when the job runs.
const (
	codeRefundExceeds  = issuerapi.CodeRefundExceedsCaptured
	codeCaptureExceeds = issuerapi.CodeCaptureExceeds
	codeCaptureVoided  = issuerapi.CodeCaptureAfterVoid
	codeNotCapturable  = "order-not-capturable"
	codeBadKey         = "idempotency-key-invalid"
)

// payErr is a refusal of a payment command: its message ends with the code.
func payErr(code, hint, format string, a ...any) error {
	return &cli.Error{Err: fmt.Errorf(format+" [%s]", append(a, code)...), Hint: hint, Code: cli.ExitFailure}
}

// openRunning opens the merchant database of a running node (it must exist)
// for writing.
func openRunning(ctx context.Context, db string) (store.Store, error) {
	for _, f := range web.SQLiteFiles(db) {
		if _, err := os.Stat(f); err != nil {
			return nil, cli.WithHint(fmt.Errorf("%s: no such database", f), "'"+prog+" serve' creates it")
		}
	}
	return OpenStore(ctx, db, nil)
}

// opKey is the job's key: the order id, the kind and the operator's key
// (a fresh random one when none is given), which is also the issuer's
// idempotency key. Running the command again with the same -key asks nothing twice.
func opKey(id, kind, key string) (string, error) {
	if key == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		key = fmt.Sprintf("%x", b)
	}
	if err := checkKey(key); err != nil {
		return "", err
	}
	return id + "/" + kind + "/" + key, nil
}

// checkKey refuses an operator's -key that cannot be part of an idempotency key.
func checkKey(key string) error {
	if len(key) > 40 || strings.Trim(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
		return payErr(codeBadKey, "a key is 1 to 40 letters, digits, '_', '.' or '-'", "-key is not a valid key")
	}
	return nil
}

// paymentCmd is what a capture or refund command works on: the node's
// database, the order, the amount asked and the issuer's last answer.
type paymentCmd struct {
	st     store.Store
	o      *store.Order
	amount int64
	p      store.Payment
	known  bool // p is the issuer's answer; false: none recorded yet
}

// openPaymentCmd parses a capture or refund command line (-db, -key, ORDER
// AMOUNT), opens the node's database and reads the order; the caller
// closes st.
func openPaymentCmd(ctx context.Context, fs *flag.FlagSet, args []string, db, key *string) (*paymentCmd, error) {
	if err := parseArgs(fs, args, 2, "ORDER AMOUNT", "db"); err != nil {
		return nil, err
	}
	if *key != "" {
		if err := checkKey(*key); err != nil {
			return nil, err
		}
	}
	st, err := openRunning(ctx, *db)
	if err != nil {
		return nil, err
	}
	pc, err := paymentArgs(ctx, st, fs.Arg(0), fs.Arg(1))
	if err != nil {
		st.Close()
		return nil, err
	}
	return pc, nil
}

// paymentArgs reads ORDER AMOUNT and the order.
func paymentArgs(ctx context.Context, st store.Store, id, amount string) (*paymentCmd, error) {
	o, err := st.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, payErr(api.CodeUnknownOrder, "'"+prog+" orders' lists them", "no order %.64q", id)
	}
	if err != nil {
		return nil, err
	}
	minor, err := money.ParseInput(amount, o.Currency)
	if err != nil {
		return nil, amountErr("AMOUNT", err, o.Currency)
	}
	if minor <= 0 {
		return nil, cli.Usagef("a positive amount such as 12.50", "AMOUNT must be positive")
	}
	p, ok, err := st.Payment(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	return &paymentCmd{st: st, o: o, amount: minor, p: p, known: ok}, nil
}

// cmdCapture asks the issuer, through the outbox, to capture part of an
// order's authorization: a split shipment. The carrier's report that the
// parcel shipped captures whatever is left.
func cmdCapture(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "capture", "-db FILE [-final] [-key K] ORDER AMOUNT", stdio,
		prog+" capture -db merchant.db ord_… 12.50",
		prog+" capture -db merchant.db -final ord_… 20.00")
	db := fs.String("db", "", "the merchant database of the running node")
	final := fs.Bool("final", false, "the order's last shipment: release the rest of the hold with it")
	key := fs.String("key", "", "idempotency key (default: a fresh one); the same key again asks nothing twice")
	pc, err := openPaymentCmd(ctx, fs, args, db, key)
	if err != nil {
		return err
	}
	defer pc.st.Close()
	o, amount, p, ok := pc.o, pc.amount, pc.p, pc.known
	switch {
	case ok && p.State == issuerapi.StateVoided, o.State == api.StateCancelled:
		return payErr(codeCaptureVoided, "a voided authorization captures nothing", "order %s was voided", o.ID)
	case o.State != api.StateAuthorized && o.State != api.StateShipped && o.State != api.StateDelivered:
		return payErr(codeNotCapturable, "only an authorized order is captured", "order %s is %s", o.ID, o.State)
	case amount > o.Total-p.Captured:
		return payErr(codeCaptureExceeds, "the authorization holds "+money.Format(o.Total-p.Captured, o.Currency),
			"%s is more than the authorization still holds", money.Format(amount, o.Currency))
	}
	return queuePayment(ctx, pc.st, stdio, o, jobCapture, *key, paymentJob{Order: o.ID, Amount: amount, Final: *final}, "capture")
}

// cmdRefund asks the issuer, through the outbox, to refund part or all of
// what was captured of an order.
func cmdRefund(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "refund", "-db FILE [-key K] ORDER AMOUNT", stdio,
		prog+" refund -db merchant.db ord_… 12.50",
		prog+" refund -db merchant.db -key return-7 ord_… 5")
	db := fs.String("db", "", "the merchant database of the running node")
	key := fs.String("key", "", "idempotency key (default: a fresh one); the same key again refunds nothing twice")
	pc, err := openPaymentCmd(ctx, fs, args, db, key)
	if err != nil {
		return err
	}
	defer pc.st.Close()
	o, amount, p := pc.o, pc.amount, pc.p
	if left := p.Captured - p.Refunded; amount > left {
		return payErr(codeRefundExceeds, money.Format(left, o.Currency)+" is captured and not yet refunded",
			"%s is more than was captured", money.Format(amount, o.Currency))
	}
	return queuePayment(ctx, pc.st, stdio, o, jobRefund, *key, paymentJob{Order: o.ID, Amount: amount}, "refund")
}

// queuePayment puts the operator's capture or refund job for o into the
// outbox under its idempotency key (key, or a fresh one) and prints the
// key; a key asked already queues nothing.
func queuePayment(ctx context.Context, st store.Store, stdio cli.Stdio, o *store.Order, kind, key string, job paymentJob, what string) error {
	k, err := opKey(o.ID, kind, key)
	if err != nil {
		return err
	}
	payload, _ := json.Marshal(job)
	queued, err := st.Enqueue(ctx, o.ID, store.Job{Kind: kind, Key: k, Payload: payload},
		what+" of "+money.Format(job.Amount, o.Currency)+" asked by the operator")
	if err != nil {
		return err
	}
	if !queued {
		fmt.Fprintf(stdio.Err, "%s: %s was asked already; nothing more is asked\n", prog, k)
	}
	fmt.Fprintln(stdio.Out, k)
	return nil
}
