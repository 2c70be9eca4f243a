package merchant

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/outbox"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	issuerapi "orderseal/issuer/api"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order"
	vaultapi "orderseal/vault/api"
)

// Relay jobs, each keyed by order id (the idempotency key): the issuer, the
// vault and the carrier each key their side on (merchant, order id) as well,
// so a job replayed after a crash gets the same answer and changes nothing.
const (
	jobAuthorize = "authorize" // relay header + issuer section
	jobGrant     = "grant"     // present the vault section for the carrier's grant
	jobBook      = "book"      // relay header + carrier section
	jobVoid      = "void"      // release the issuer's hold of an order that cannot ship
	jobUnbook    = "unbook"    // cancel the carrier's booking of an order being cancelled (cancel.go)
)

// Failure reasons recorded on an order the relay gave up on.
const (
	reasonIssuerAnswer  = "issuer-answer-mismatch"
	reasonCarrierAnswer = "carrier-answer-mismatch"
	reasonUnreachable   = "peer-unreachable"
)

// classify turns a relay error into the outbox's verdict: a peer's refusal
// (4xx other than 408 and 429) will not change on retry; anything else —
// network, timeout, 5xx, 429, and a replayed-nonce 401 (the next attempt is
// signed with a fresh nonce) — is retried.
func classify(err error) error {
	var p *rfc9457.Problem
	if errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Status != http.StatusRequestTimeout &&
		p.Status != http.StatusTooManyRequests && p.Code != signedhttp.CodeReplayedNonce {
		return outbox.Permanent(err)
	}
	return err
}

// reasonOf names why a relay failed for good: the peer's problem code, or
// the reason recorded with a permanent local error.
func reasonOf(err error) string {
	var p *rfc9457.Problem
	if errors.As(err, &p) && p.Code != "" {
		return p.Code
	}
	var r relayError
	if errors.As(err, &r) {
		return r.reason
	}
	return reasonUnreachable
}

type relayError struct {
	reason string
	err    error
}

func (e relayError) Error() string { return e.reason + ": " + e.err.Error() }
func (e relayError) Unwrap() error { return e.err }

// load returns the order and its parsed bundle: the order without its
// bundle when the bundle cache holds the version stored, else with it.
func (s *Server) load(ctx context.Context, id string) (*store.Order, *order.Bundle, error) {
	o, err := s.cfg.Store.GetWithoutBundle(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if b, ok := s.bundles.current(o.ID, o.IssuerSectionHash != nil); ok {
		return o, b, nil
	}
	if o, err = s.cfg.Store.Get(ctx, id); err != nil {
		return nil, nil, err
	}
	b, err := s.bundles.parse(o.ID, o.Bundle, o.IssuerSectionHash != nil)
	if err != nil {
		return nil, nil, outbox.Permanent(relayError{"stored-bundle-invalid", err})
	}
	return o, b, nil
}

// retain is what the store keeps of b once the issuer has answered (DESIGN.md
// §8 Retention): b without its issuer section — the card number, expiry
// and, online, the CVC, sealed — and the SHA-256 of that section's
// ciphertext. Nothing after authorization needs the section: the vault and
// the carrier get their own, a void names only the order, and a resubmission
// is recognised by the header hash, which covers the section's commitment.
// The parsed kept bundle comes with it, for the bundle cache.
func retain(b *order.Bundle) (*store.Retained, *order.Bundle, error) {
	sec, ok := b.Sections[order.RoleIssuer]
	if !ok {
		return nil, nil, nil // dropped already
	}
	kept := *b
	kept.Sections = maps.Clone(b.Sections)
	delete(kept.Sections, order.RoleIssuer)
	raw, err := kept.MarshalJSON()
	if err != nil {
		return nil, nil, err
	}
	h := sha256.Sum256(sec.CT)
	return &store.Retained{Bundle: raw, IssuerSectionHash: h[:]}, &kept, nil
}

// echoes reports whether a peer's header hash is the bundle's, in constant time.
func echoes(b *order.Bundle, got string) bool {
	want := b.HeaderHash()
	raw, err := base64.RawURLEncoding.DecodeString(got)
	return err == nil && subtle.ConstantTimeCompare(raw, want[:]) == 1
}

func (s *Server) authorize(ctx context.Context, job outbox.Job) error {
	o, b, err := s.load(ctx, job.Key)
	if err != nil {
		return err
	}
	if o.State != api.StateReceived {
		return nil // already answered: a replayed job
	}
	client := s.issuers[o.Issuer]
	if client == nil {
		return outbox.Permanent(relayError{api.CodeIssuerNotAccepted, fmt.Errorf("issuer %s no longer configured", o.Issuer)})
	}
	invoice, err := api.NewInvoice()
	if err != nil {
		return err
	}
	revoked := false // the order's grant was revoked by an earlier attempt
	if o.Vault != "" {
		// The grant is created pending before the issuer decides
		// (DESIGN.md §7); the vault answers a retry with the invoice it
		// bound first, so every attempt agrees on it.
		g, err := s.vault.Grant(ctx, b, invoice, "")
		switch {
		case hasCode(err, vaultapi.CodeGrantRevoked):
			// Only this job revokes a grant of an order still received: an
			// earlier attempt heard the issuer decline and revoked it, and
			// the vault's answer was lost. The issuer answers again as it
			// did; the decline is recorded below.
			revoked = true
		case err != nil:
			return classify(err)
		default:
			s.keepCheckpoint(g.AuditCheckpoint)
			if err := grantMatches(o, g); err != nil {
				return err
			}
			invoice = g.Invoice
		}
	}
	auth, err := client.Authorize(ctx, b, o.Total, o.Currency, o.Session)
	if err != nil {
		return classify(err)
	}
	if auth.OrderID != o.ID || !echoes(b, auth.HeaderHash) || auth.Amount != o.Total || auth.Currency != o.Currency {
		return outbox.Permanent(relayError{reasonIssuerAnswer, errors.New("the issuer's answer does not echo this bundle")})
	}
	kept, keptBundle, err := retain(b)
	if err != nil {
		return err
	}
	switch auth.Decision {
	case issuerapi.Declined:
		if o.Vault != "" && !revoked {
			rv, err := s.vault.Revoke(ctx, o.ID, "declined")
			if err != nil {
				return classify(err)
			}
			s.keepCheckpoint(rv.AuditCheckpoint)
		}
		_, err = s.cfg.Store.Apply(ctx, o.ID, store.Transition{From: []string{api.StateReceived}, To: api.StateDeclined,
			Reason: auth.Reason, Detail: "declined by " + o.Issuer + ": " + auth.Reason, Retain: kept, Finishes: true})
		if err == nil {
			s.log.Info("order declined", "order", o.ID, "reason", auth.Reason)
		}
		return err
	case issuerapi.Approved:
		// The hold and the plan the issuer answered with are recorded in
		// the transaction of the approval (or of the failure) itself.
		appr := newApproval(o, auth)
		if revoked {
			return s.failApproved(ctx, o, appr, vaultapi.CodeGrantRevoked)
		}
		next := jobBook
		if o.Vault != "" {
			// The issuer's approval, which only the vault can verify,
			// activates the pending grant.
			if auth.VaultApproval == "" {
				return s.failApproved(ctx, o, appr, vaultapi.CodeApprovalInvalid)
			}
			g, err := s.vault.Grant(ctx, b, invoice, auth.VaultApproval)
			if err != nil {
				if refusedBy(err) {
					return s.failApproved(ctx, o, appr, reasonOf(err))
				}
				return err
			}
			s.keepCheckpoint(g.AuditCheckpoint)
			if err := grantMatches(o, g); err != nil {
				return err
			}
			if active(g, invoice) {
				// The vault's answer to the activation says the grant
				// is active: the carrier is booked next, with no
				// separate confirmation (jobGrant) in between.
				appr.notes = append(appr.notes, store.Event{State: api.StateAuthorized, Detail: granted(o, g)})
			} else {
				next = jobGrant
			}
		}
		applied, err := s.cfg.Store.Apply(ctx, o.ID, store.Transition{From: []string{api.StateReceived}, To: api.StateAuthorized,
			AuthCode: auth.AuthCode, Invoice: invoice, Detail: "approved by " + o.Issuer + ", code " + auth.AuthCode, Jobs: []string{next},
			Notes: appr.notes, Payment: appr.payment, Retain: kept, Finishes: true})
		if err == nil && !applied {
			if err = s.recordApproval(ctx, o, auth); err == nil {
				err = s.lateApproval(ctx, o.ID, auth.AuthCode)
			}
		}
		if err == nil && applied {
			if kept != nil {
				// The next job reads the kept bundle: parsed already.
				s.bundles.put(o.ID, kept.Bundle, keptBundle, true)
			}
			s.log.Info("order authorized", "order", o.ID)
		}
		return err
	}
	return outbox.Permanent(relayError{reasonIssuerAnswer, fmt.Errorf("unknown decision %q", auth.Decision)})
}

// lateApproval handles an approval the order could not take because it
// had left received. Cancelled while the issuer decided, its cancel's void
// may have found nothing to void yet: a void releases the hold. Already
// holding this very approval, it was authorized by another run of this
// job — a node whose lease ran out while it was slow, and the node that
// took the job over, both asked the issuer, which answered both with its
// one approval — and the order ships on it: nothing is voided.
func (s *Server) lateApproval(ctx context.Context, id, authCode string) error {
	cur, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	if authCode != "" && cur.AuthCode == authCode {
		s.log.Info("approval recorded by another run of the job", "order", id, "state", cur.State)
		return nil
	}
	_, err = s.cfg.Store.Enqueue(ctx, id, store.Job{Kind: jobVoid, Key: id + "/late"}, "approved after the order moved on: the hold is voided")
	return err
}

// approval is what an approval adds to the transaction that records it:
// the payment row and the timeline entries beside the state's own.
type approval struct {
	authCode string
	payment  *store.Payment
	notes    []store.Event
}

func newApproval(o *store.Order, a *issuerapi.Authorization) approval {
	p, plan := approvalRecord(o, a)
	ap := approval{authCode: a.AuthCode, payment: p}
	if plan != "" {
		ap.notes = append(ap.notes, store.Event{State: api.PlanEvent, Detail: plan})
	}
	return ap
}

// failApproved records an approved order whose grant the vault refused to
// activate: it cannot ship, so its hold is voided (and its grants revoked).
func (s *Server) failApproved(ctx context.Context, o *store.Order, appr approval, reason string) error {
	_, err := s.cfg.Store.Apply(ctx, o.ID, store.Transition{From: []string{api.StateReceived}, To: api.StateFailed,
		AuthCode: appr.authCode, Reason: reason, Detail: "grant failed: " + reason, Jobs: []string{jobVoid},
		Notes: appr.notes, Payment: appr.payment, Finishes: true})
	if err == nil {
		s.log.Warn("order failed", "order", o.ID, "step", jobGrant, "reason", reason)
	}
	return err
}

func grantMatches(o *store.Order, g *vaultapi.GrantResponse) error {
	if g.OrderID != o.ID || g.Carrier != o.Carrier || g.Token != o.ShipToken || g.Invoice == "" {
		return outbox.Permanent(relayError{"vault-answer-mismatch", errors.New("the vault's grant does not match this order")})
	}
	return nil
}

// active reports whether the vault's answer g shows the grant active for invoice.
func active(g *vaultapi.GrantResponse, invoice string) bool {
	return g.State == vaultapi.GrantActive && g.Invoice == invoice
}

// granted is the timeline entry of an active grant.
func granted(o *store.Order, g *vaultapi.GrantResponse) string {
	return "address release granted to " + o.Carrier + " until " + g.Expires
}

// grant confirms that the order's grant is active (the authorize step
// activated it with the issuer's approval) before the carrier is booked.
// The authorize step queues it only when the vault's answer to the
// activation did not show the grant active already.
func (s *Server) grant(ctx context.Context, job outbox.Job) error {
	o, b, err := s.load(ctx, job.Key)
	if err != nil {
		return err
	}
	if o.State != api.StateAuthorized {
		return nil
	}
	g, err := s.vault.Grant(ctx, b, o.Invoice, "")
	if err != nil {
		return classify(err)
	}
	s.keepCheckpoint(g.AuditCheckpoint)
	if err := grantMatches(o, g); err != nil {
		return err
	}
	if !active(g, o.Invoice) {
		return outbox.Permanent(relayError{vaultapi.CodeGrantPending, errors.New("the vault's grant for this order is not active")})
	}
	return s.cfg.Store.Note(ctx, o.ID, api.StateAuthorized, granted(o, g), jobBook)
}

func (s *Server) book(ctx context.Context, job outbox.Job) error {
	o, b, err := s.load(ctx, job.Key)
	if err != nil {
		return err
	}
	if cancelled(o.State) {
		// Cancelled before this job ran, or while it ran: an earlier
		// attempt may have booked before the process died.
		return s.unbookLate(ctx, o)
	}
	if o.State != api.StateAuthorized {
		return nil
	}
	// The carrier sends tracking events where its configuration names
	// this merchant (-public-url is what to tell its operator).
	dest, ok := s.bundles.dest(o.ID)
	if !ok {
		dest = s.destination(b)
	}
	parcel, err := s.parcel(o, dest)
	if err != nil {
		return outbox.Permanent(err)
	}
	sh, err := s.carrier.BookParcel(ctx, b, o.Invoice, parcel)
	if err != nil {
		return classify(err)
	}
	if sh.OrderID != o.ID || !echoes(b, sh.HeaderHash) || sh.Tracking == "" {
		return outbox.Permanent(relayError{reasonCarrierAnswer, errors.New("the carrier's answer does not echo this bundle")})
	}
	applied, err := s.cfg.Store.Apply(ctx, o.ID, store.Transition{From: []string{api.StateAuthorized}, To: api.StateShipped,
		Tracking: sh.Tracking, Detail: "booked with " + o.Carrier + ", tracking " + sh.Tracking, Finishes: true})
	if err != nil {
		return err
	}
	if !applied {
		// Cancelled while the carrier booked: that booking is cancelled too.
		if o, err = s.cfg.Store.Get(ctx, o.ID); err != nil {
			return err
		}
		if cancelled(o.State) {
			return s.unbookLate(ctx, o)
		}
		return nil
	}
	s.log.Info("order shipped", "order", o.ID, "tracking", sh.Tracking)
	return nil
}

// cancelled reports whether an order in state was cancelled, or is being.
func cancelled(state string) bool { return state == api.StateCancelling || state == api.StateCancelled }

// unbookLate queues the cancel of a booking the carrier may hold for an
// order cancelled before it was booked (queued once: its key).
func (s *Server) unbookLate(ctx context.Context, o *store.Order) error {
	queued, err := s.cfg.Store.Enqueue(ctx, o.ID, store.Job{Kind: jobUnbook, Key: o.ID + "/late"}, "")
	if queued {
		s.runner.Kick()
	}
	return err
}

// destination is the country the cardholder told this merchant (its
// section's ship_to_country, when the bundle's policy gives it), "" when
// none: the merchant section is opened again from the stored bundle.
func (s *Server) destination(b *order.Bundle) string {
	// Judged at its creation: intake accepted it then, and a booking retried
	// past the bundle's window still ships.
	created, err := time.Parse(time.RFC3339, b.Created)
	if err != nil {
		return ""
	}
	sec, err := order.Open(b, s.cfg.Keys, order.RoleMerchant, order.OpenOptions{Now: created})
	if err != nil {
		return ""
	}
	return sec.ShipCountry
}

// parcel is the declaration booked with o: the configured sender, service,
// one piece of the items' weight, and, for a parcel to dest abroad, the
// items as customs contents for its CN22. A domestic parcel's, or one to a
// country the merchant was not told, names no contents: the carrier
// learns what was bought only where customs must. nil when no sender is
// configured.
func (s *Server) parcel(o *store.Order, dest string) (*carrierapi.Parcel, error) {
	if s.cfg.Sender.Country == "" {
		return nil, nil
	}
	var items []order.Item
	if err := json.Unmarshal(o.Items, &items); err != nil {
		return nil, fmt.Errorf("order %s: stored items: %w", o.ID, err)
	}
	per := s.cfg.ItemWeightG
	if per <= 0 {
		per = 400
	}
	abroad := dest != "" && dest != s.cfg.Sender.Country
	service := cmp.Or(s.cfg.Service, "Standard")
	if abroad {
		service = cmp.Or(s.cfg.ServiceAbroad, "International")
	}
	p := &carrierapi.Parcel{Sender: s.cfg.Sender, Service: service, Pieces: 1, Category: "merchandise"}
	for _, it := range items {
		w := int(min(it.Qty, 100)) * per
		p.WeightG += w
		if abroad {
			p.Contents = append(p.Contents, carrierapi.CustomsItem{Description: truncateRunes(it.Name, 100), Qty: int(it.Qty),
				WeightG: w, Value: it.Qty * it.UnitPrice, Currency: o.Currency, Origin: s.cfg.Sender.Country})
		}
	}
	p.WeightG = min(max(p.WeightG, 1), 70000)
	return p, nil
}

// truncateRunes cuts s to at most n runes.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func (s *Server) void(ctx context.Context, job outbox.Job) error {
	o, err := s.cfg.Store.Get(ctx, orderOfKey(job.Key))
	if err != nil {
		return err
	}
	// The order cannot ship: the vault revokes its grants and the
	// carrier's deposits for it first (DESIGN.md §7).
	why := "failed"
	if cancelled(o.State) {
		why = "cancelled"
	}
	rv, err := s.vault.Revoke(ctx, o.ID, why)
	if err != nil {
		return classify(err)
	}
	s.keepCheckpoint(rv.AuditCheckpoint)
	client := s.issuers[o.Issuer]
	if client == nil {
		return outbox.Permanent(fmt.Errorf("issuer %s no longer configured", o.Issuer))
	}
	a, err := client.Void(ctx, o.ID)
	if err != nil {
		var p *rfc9457.Problem
		if errors.As(err, &p) && p.Status == http.StatusNotFound && p.Code == issuerapi.CodeUnknownAuth {
			// The authorization never reached the issuer: nothing is held.
			if err := s.cfg.Store.Note(ctx, o.ID, o.State, "no authorization to void at "+o.Issuer); err != nil {
				return err
			}
			return s.cancelDone(ctx, o)
		}
		return classify(err)
	}
	if a.State != "" { // an issuer that reports the lifecycle: its word on the payment is recorded
		if err := s.answered(ctx, o, a, ""); err != nil {
			return err
		}
	}
	if err := s.cfg.Store.Note(ctx, o.ID, o.State, "authorization voided at "+o.Issuer); err != nil {
		return err
	}
	return s.cancelDone(ctx, o)
}

// cancelDone makes an order being cancelled cancelled: its void is the last
// step (after the carrier's cancel, for a booked one).
func (s *Server) cancelDone(ctx context.Context, o *store.Order) error {
	if o.State != api.StateCancelling {
		return nil
	}
	applied, err := s.cfg.Store.Apply(ctx, o.ID, store.Transition{From: []string{api.StateCancelling}, To: api.StateCancelled,
		Reason: "cancelled", Detail: "cancelled by the cardholder"})
	if err == nil && applied {
		s.log.Info("order cancelled", "order", o.ID)
	}
	return err
}

// hasCode reports whether err is a peer's signed problem with code.
func hasCode(err error, code string) bool {
	var p *rfc9457.Problem
	return errors.As(err, &p) && p.Code == code
}

// refusedBy reports whether err is the peer's own refusal (a 4xx problem it
// signed): the request was judged and nothing was granted.
func refusedBy(err error) bool {
	var p *rfc9457.Problem
	return errors.As(err, &p) && p.Status >= 400 && p.Status < 500
}

// voidPatience is how long a void is retried: an issuer's hold lasts days,
// and a hold nobody releases ties the cardholder's credit up.
const voidPatience = 7 * 24 * time.Hour

// deadline is how long a relay job is worth retrying (issue 22 item 2): an
// order's relays while its bundle is valid — the issuer and carrier refuse
// it after that, and the grant the cardholder sealed ends with it — and a
// void for as long as a hold may last.
func (s *Server) deadline(ctx context.Context, job outbox.Job) time.Time {
	o, err := s.cfg.Store.Get(ctx, orderOfKey(job.Key)) // an order id has no '/'
	if err != nil {
		return time.Time{} // MaxAttempts then bounds it
	}
	return retryUntil(o, job.Kind)
}

// retryUntil is the deadline of o's job of kind; zero when o's bundle
// cannot be read.
func retryUntil(o *store.Order, kind string) time.Time {
	if kind == jobVoid || kind == jobUnbook || isPaymentJob(kind) {
		return paymentDeadline(o)
	}
	b, err := order.ParseBundle(o.Bundle)
	if err != nil {
		return time.Time{}
	}
	return b.ExpiresAt()
}

// giveUp records a relay that failed for good. An order the issuer approved,
// or may have approved, has its hold released.
func (s *Server) giveUp(ctx context.Context, job outbox.Job, err error) {
	if s.paymentGiveUp(ctx, job, err) {
		return
	}
	reason := reasonOf(err)
	var jobs []string
	from := []string{api.StateReceived}
	switch job.Kind {
	case jobAuthorize:
		// Unless the issuer refused the request, it may hold an approval
		// the merchant never got (an answer lost to a timeout, or one that
		// did not echo the bundle): release it.
		if !refusedBy(err) {
			jobs = []string{jobVoid}
		}
	case jobGrant, jobBook:
		from, jobs = []string{api.StateAuthorized}, []string{jobVoid}
	case jobVoid:
		s.log.Error("void failed for good; release the hold by hand", "order", job.Key, "reason", reason)
		return
	case jobUnbook:
		// The booking stands: the order goes back to its parcel's state.
		o, gerr := s.cfg.Store.Get(ctx, orderOfKey(job.Key))
		if gerr == nil {
			gerr = s.unbookRefused(ctx, o, job.Key, reason)
		}
		if gerr != nil {
			s.log.Error("recording a failed booking cancel", "order", job.Key, "err", gerr)
		}
		return
	}
	var kept *store.Retained
	if job.Kind == jobAuthorize {
		// No authorization will be asked for again: the section goes.
		if _, b, lerr := s.load(ctx, job.Key); lerr == nil {
			kept, _, _ = retain(b)
		}
	}
	if _, aerr := s.cfg.Store.Apply(ctx, job.Key, store.Transition{From: from, To: api.StateFailed, Reason: reason,
		Detail: job.Kind + " failed: " + reason, Jobs: jobs, Retain: kept}); aerr != nil {
		s.log.Error("recording a failed relay", "order", job.Key, "err", aerr)
		return
	}
	s.log.Warn("order failed", "order", job.Key, "step", job.Kind, "reason", reason)
}
