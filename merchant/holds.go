package merchant

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"orderseal/internal/tick"
	issuerapi "orderseal/issuer/api"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order/money"
)

// DefaultHoldSweep is how often the merchant looks for holds past their
// end (Config.HoldSweep).
const DefaultHoldSweep = time.Minute

// recordApproval records what an approval says about the payment, on its
// own (the approval's state change, which carries the same in its
// transaction, did not apply): see approvalRecord.
func (s *Server) recordApproval(ctx context.Context, o *store.Order, a *issuerapi.Authorization) error {
	p, plan := approvalRecord(o, a)
	if p != nil {
		if err := s.cfg.Store.RecordPayment(ctx, *p, ""); err != nil {
			return err
		}
	}
	if plan == "" {
		return nil
	}
	tl, err := s.cfg.Store.Timeline(ctx, o.ID)
	if err != nil {
		return err
	}
	for _, e := range tl {
		if e.State == api.PlanEvent {
			return nil // recorded by an attempt before a crash
		}
	}
	return s.cfg.Store.Note(ctx, o.ID, api.PlanEvent, plan)
}

// approvalRecord is what an approval says about the payment: the hold and
// when it ends (for the hold sweep; nil when the issuer reports no
// lifecycle state), and the installment schedule, written for people, for
// a PlanEvent on the timeline ("" for none).
func approvalRecord(o *store.Order, a *issuerapi.Authorization) (*store.Payment, string) {
	var p *store.Payment
	if a.State != "" {
		p = &store.Payment{OrderID: o.ID, State: a.State, Captured: a.Captured, Refunded: a.Refunded}
		if t, err := time.Parse(time.RFC3339, a.HoldUntil); err == nil {
			p.HoldUntil = t
		}
	}
	return p, planText(a.Plan, o.Currency)
}

// planText is the issuer's schedule written for people, "" for none.
func planText(p *issuerapi.Plan, currency string) string {
	if p == nil || p.Installments < 2 || len(p.Schedule) == 0 {
		return ""
	}
	parts := make([]string, 0, len(p.Schedule))
	for _, in := range p.Schedule {
		parts = append(parts, money.Format(in.Amount, currency)+" due "+in.Due)
	}
	return strconv.Itoa(p.Installments) + " installments: " + strings.Join(parts, ", ")
}

// sweepHolds runs sweepHoldsOnce every d until ctx ends.
func (s *Server) sweepHolds(ctx context.Context, d time.Duration) {
	tick.Every(ctx, d, func() {
		if n, err := s.sweepHoldsOnce(ctx); err != nil {
			s.log.Warn("hold sweep", "err", err, "recorded", n)
		} else if n > 0 {
			s.log.Info("hold sweep", "recorded", n)
		}
	})
}

// sweepHoldsOnce asks the issuer about every order authorized or booked
// whose recorded hold is past while its payment is still held (authorized
// or partially captured), and records the issuer's answer — expired, as a
// rule — on the order's payment and timeline, so the merchant sees the
// expiry when it happens rather than at its next step. It returns how many
// orders it recorded. An order whose issuer still holds it (clocks apart)
// is asked again at the next sweep.
func (s *Server) sweepHoldsOnce(ctx context.Context) (int, error) {
	var live []string
	if err := s.cfg.Store.EachBrief(ctx, func(b store.OrderBrief) error {
		if b.State == api.StateAuthorized || b.State == api.StateShipped {
			live = append(live, b.ID)
		}
		return ctx.Err()
	}); err != nil {
		return 0, err
	}
	now := s.now()
	n := 0
	for _, id := range live {
		p, ok, err := s.cfg.Store.Payment(ctx, id)
		if err != nil {
			return n, err
		}
		if !ok || p.HoldUntil.IsZero() || !now.After(p.HoldUntil) ||
			(p.State != issuerapi.StateAuthorized && p.State != issuerapi.StatePartiallyCaptured) {
			continue
		}
		o, err := s.cfg.Store.Get(ctx, id)
		if err != nil {
			return n, err
		}
		client := s.issuers[o.Issuer]
		if client == nil {
			continue
		}
		a, err := client.Get(ctx, o.ID)
		if err != nil {
			s.log.Warn("hold sweep: issuer not answering", "order", o.ID, "issuer", o.Issuer, "err", err)
			continue
		}
		if a.State == p.State && a.Captured == p.Captured {
			continue
		}
		detail := fmt.Sprintf("the issuer's record: %s", a.State)
		if a.State == issuerapi.StateExpired {
			detail = "hold expired at " + o.Issuer + " (held until " + p.HoldUntil.UTC().Format(time.RFC3339) +
				"): " + money.Format(o.Total-a.Captured, o.Currency) + " released, nothing more can be captured"
		}
		if err := s.answered(ctx, o, a, detail); err != nil {
			return n, err
		}
		s.log.Info("hold recorded from the issuer", "order", o.ID, "state", a.State)
		n++
	}
	return n, nil
}
