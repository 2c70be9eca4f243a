package cardholder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/suite"
)

// The cardholder's outbox (issue 22 item 1): every sealed bundle is written
// to a 0600 file before it is first sent and stays there until the merchant
// answers. A lost answer then costs nothing: the same bundle (same order id,
// same header) is sent again, and the merchant answers it with the order it
// already stored, so the card is charged once.

// pending is one outbox file: the sealed bundle (card and address only
// sealed, never in clear) and what is needed to send it again.
type pending struct {
	V          int              `json:"v"`
	OrderID    string           `json:"order_id"`
	Merchant   string           `json:"merchant"`    // base URL
	MerchantID string           `json:"merchant_id"` // the pinned identity
	Key        string           `json:"key"`         // path of the key file that signs the submission
	Sealed     time.Time        `json:"sealed"`
	Bundle     json.RawMessage  `json:"bundle"`
	Assisted   *pendingAssisted `json:"assisted,omitempty"`
}

// pendingAssisted is what an assisted submission carries beside the bundle.
type pendingAssisted struct {
	Session   string             `json:"session"`
	Device    string             `json:"device"`
	Proof     merchantapi.Sealed `json:"proof"`
	DeviceSig []byte             `json:"device_signature"`
}

const (
	pendingVersion = 1
	maxPending     = order.MaxBundleSize + 16<<10
)

var orderIDRE = regexp.MustCompile(`^ord_[A-Za-z0-9_-]{8,64}$`)

// errOutcomeUnknown marks a submission that got no answer before the
// cardholder's patience or the bundle ran out.
var errOutcomeUnknown = errors.New("outcome unknown")

// noAnswer is errOutcomeUnknown with what was tried.
type noAnswer struct {
	attempts int
	last     error
}

func (e *noAnswer) Error() string {
	return fmt.Sprintf("no answer after %d attempts (last: %s)", e.attempts, oneLineErr(e.last))
}
func (e *noAnswer) Unwrap() error { return errOutcomeUnknown }

// outboxDir is -outbox, else orderseal/outbox in the user's state directory
// ($XDG_STATE_HOME, default ~/.local/state).
func outboxDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "orderseal", "outbox"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", cli.WithHint(fmt.Errorf("no state directory for the order outbox: %w", err), "set HOME or XDG_STATE_HOME, or pass -outbox DIR")
	}
	return filepath.Join(home, ".local", "state", "orderseal", "outbox"), nil
}

func pendingPath(dir, id string) string { return filepath.Join(dir, id+".json") }

// keep writes the bundle to the outbox before anything is sent: created
// 0600 with O_EXCL and synced, with its directory.
func keep(dir string, p *pending) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cli.WithHint(fmt.Errorf("order outbox %s: %w", dir, err), "pass -outbox DIR on a writable disk")
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := secfile.WriteNew(pendingPath(dir, p.OrderID), data); err != nil {
		return cli.WithHint(fmt.Errorf("order outbox: %w; nothing was sent", err), "pass -outbox DIR on a writable disk")
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// loadPending reads an outbox file back.
func loadPending(dir, id string) (*pending, error) {
	if !orderIDRE.MatchString(id) {
		return nil, cli.Usagef("give the order id printed when the order was sealed: ord_…", "%.80q is not an order id", id)
	}
	data, err := secfile.Read(pendingPath(dir, id), maxPending)
	if errors.Is(err, os.ErrNotExist) {
		return nil, cli.WithHint(fmt.Errorf("order %s is not in the outbox %s", id, dir), "it was answered already: cardholder status "+id)
	}
	if err != nil {
		return nil, fmt.Errorf("order outbox: %w", err)
	}
	var p pending
	if err := strictjson.Decode(data, &p, maxPending); err != nil {
		return nil, fmt.Errorf("order outbox file %s: %w", pendingPath(dir, id), err)
	}
	if p.V != pendingVersion || p.OrderID != id {
		return nil, fmt.Errorf("order outbox file %s: version %d for %s, want %d for %s", pendingPath(dir, id), p.V, p.OrderID, pendingVersion, id)
	}
	return &p, nil
}

// forget removes an answered order's file: the merchant has it, or has
// refused it for good.
func forget(dir, id string) { os.Remove(pendingPath(dir, id)) }

// submitter sends one pending order.
type submitter func(ctx context.Context) (*merchantapi.Accepted, error)

func submitterFor(mc *merchantapi.Client, b *order.Bundle, a *pendingAssisted) submitter {
	if a == nil {
		return func(ctx context.Context) (*merchantapi.Accepted, error) { return mc.Submit(ctx, b) }
	}
	return func(ctx context.Context) (*merchantapi.Accepted, error) {
		return mc.SubmitAssisted(ctx, b, a.Session, a.Device, a.Proof, a.DeviceSig)
	}
}

// retryable says whether a failed submission may have no answer yet: no
// signed answer at all, or the merchant saying "not now".
func retryable(err error) bool {
	var p *rfc9457.Problem
	if !errors.As(err, &p) {
		return true
	}
	return p.Status >= 500 || p.Status == http.StatusTooManyRequests
}

// deliver sends the same bundle until the merchant answers or until
// deadline (never past the bundle's expiry), backing off between tries.
// It returns the acceptance, the merchant's refusal, or errOutcomeUnknown.
func deliver(ctx context.Context, send submitter, id string, deadline time.Time, stdio cli.Stdio) (*merchantapi.Accepted, error) {
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		acc, err := send(ctx)
		if err == nil {
			if acc.OrderID != id {
				return nil, fmt.Errorf("the merchant accepted order %q for bundle %s", acc.OrderID, id)
			}
			return acc, nil
		}
		if !retryable(err) {
			return nil, reachErr("merchant", err)
		}
		if ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			return nil, &noAnswer{attempts: attempt, last: err}
		}
		fmt.Fprintf(stdio.Err, "%s: no answer for order %s (%v); sending the same bundle again in %s\n", prog, id, oneLineErr(err), delay)
		select {
		case <-ctx.Done():
			return nil, &noAnswer{attempts: attempt, last: ctx.Err()}
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func oneLineErr(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// unknownErr is what the cardholder reads when no answer came: the order
// id, how to ask for its fate, and how to send it again.
func unknownErr(id string, err error) error {
	return cli.WithHint(fmt.Errorf("order %s: %w; outcome unknown: cardholder status %s", id, err, id),
		"the sealed bundle is kept; send it again with: cardholder order -resume "+id)
}

// resumeOrder sends a kept bundle again and follows it like a new order.
func resumeOrder(ctx context.Context, id, dir, keyFlag, merchantFlag string, submitFor, wait time.Duration, asJSON bool, stdio cli.Stdio) error {
	p, err := loadPending(dir, id)
	if err != nil {
		return err
	}
	b, err := order.ParseBundle(p.Bundle)
	if err != nil {
		return fmt.Errorf("order outbox file %s: %w", pendingPath(dir, id), err)
	}
	keyPath := keyFlag
	if keyPath == "" {
		keyPath = p.Key
	}
	base := merchantFlag
	if base == "" {
		base = p.Merchant
	}
	key, err := loadRoleKey(keyPath, keygen.RoleOf(b.Cardholder), "-key")
	if err != nil {
		return err
	}
	defer key.Destroy()
	if key.Identity() != b.Cardholder {
		return cli.Usagef("give the key the order was sealed with", "order %s was sealed by %s, -key is %s", id, b.Cardholder, key.Identity())
	}
	mc, err := newMerchantClient(suite.NewKeys(key, 4), base, p.MerchantID, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, id)
	deadline := time.Now().Add(submitFor)
	if exp := b.ExpiresAt(); exp.Before(deadline) {
		deadline = exp
	}
	if !time.Now().Before(deadline) {
		// Too late to send: only the merchant can say whether it arrived.
		st, err := mc.Status(ctx, id)
		var pr *rfc9457.Problem
		if errors.As(err, &pr) && pr.Code == merchantapi.CodeUnknownOrder {
			forget(dir, id)
			return cli.WithHint(fmt.Errorf("order %s expired at %s and never reached %s; nothing was charged", id, b.ExpiresAt().Format(time.RFC3339), p.MerchantID), "order again")
		}
		if err != nil {
			return unknownErr(id, fmt.Errorf("bundle expired, no status (%s)", oneLineErr(err)))
		}
		forget(dir, id)
		return settleOrPrint(ctx, mc, st, wait, asJSON, stdio)
	}
	acc, err := deliver(ctx, submitterFor(mc, b, p.Assisted), id, deadline, stdio)
	if errors.Is(err, errOutcomeUnknown) {
		return unknownErr(id, err)
	}
	forget(dir, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "%s: order %s accepted by %s (%s)\n", prog, acc.OrderID, p.MerchantID, acc.State)
	if wait <= 0 {
		return nil
	}
	st, err := follow(ctx, mc, acc.OrderID, wait, stdio)
	if err != nil {
		return err
	}
	return settle(st, asJSON, stdio)
}

// settleOrPrint follows a known order for wait, or settles it as it is.
func settleOrPrint(ctx context.Context, mc *merchantapi.Client, st *merchantapi.Status, wait time.Duration, asJSON bool, stdio cli.Stdio) error {
	if wait > 0 && !merchantapi.Settled(st.State) {
		var err error
		if st, err = follow(ctx, mc, st.OrderID, wait, stdio); err != nil {
			return err
		}
	}
	return settle(st, asJSON, stdio)
}
