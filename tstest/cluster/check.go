package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"orderseal/internal/outbox"
	issuerapi "orderseal/issuer/api"
	issuerstore "orderseal/issuer/store"
	merchantapi "orderseal/merchant/api"
	merchantstore "orderseal/merchant/store"
	vaultstore "orderseal/vault/store"
)

// jobVoid is the merchant's outbox kind that releases the issuer's hold of
// an order that cannot ship (merchant/relay.go).
const jobVoid = "void"

// Report is the outcome of Verify: the counts of the chaos summary line and
// every broken invariant in words.
type Report struct {
	Orders       int // orders at the merchant
	Terminal     int // of them, settled (declined, shipped, delivered, failed)
	Lost         int // acknowledged orders the merchant does not hold
	DoubleDebits int // cards debited beyond their approvals, plus orders authorized twice
	States       map[string]int
	Voided       int // approvals released by the merchant's void jobs
	GivenUp      int // relay jobs (authorize, grant, book) the merchant gave up on
	Problems     []string
	Warnings     []string // oddities that break no invariant

	// What the other parties' stores hold of the merchant's orders: the
	// issuer's authorizations (approved or declined), the carrier's
	// shipments and the vault's grants.
	Authorizations, Shipments, Grants int
}

// OK reports whether every invariant held.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problem(format string, a ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
}

// Line is the one-line summary: "N orders, N terminal, 0 lost, 0 double debits".
func (r *Report) Line() string {
	return fmt.Sprintf("%d orders, %d terminal, %d lost, %d double debits, %d given up", r.Orders, r.Terminal, r.Lost, r.DoubleDebits, r.GivenUp)
}

// WaitQuiet waits until every order at the merchant is settled and its relay
// outbox holds no pending job (void jobs of failed orders included), or ctx
// ends. progress, if not nil, is called about every five seconds.
func (c *Cluster) WaitQuiet(ctx context.Context, progress func(unsettled, pending int)) error {
	st, err := c.merchantReader(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	last := time.Now()
	for {
		var unsettled, pending int
		counts, err := st.Counts(ctx)
		for state, n := range counts {
			if !merchantapi.Settled(state) {
				unsettled += n
			}
		}
		if err == nil {
			var jobs outbox.Stats
			jobs, err = st.Outbox().Count(ctx, "")
			pending = jobs.Pending
		}
		if err == nil && unsettled == 0 && pending == 0 {
			return nil
		}
		if progress != nil && time.Since(last) >= 5*time.Second {
			progress(unsettled, pending)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("merchant database: %w", err)
			}
			return fmt.Errorf("%d orders unsettled, %d relay jobs pending: %w", unsettled, pending, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// merchantOrder is what Verify reads of a merchant order.
type merchantOrder struct {
	state, tracking, token string
	total                  int64
}

// Verify reads every party's database read-only — best with the daemons
// stopped — and checks the invariants chaos must not break:
//
//  1. nothing lost: every acknowledged order id is at the merchant, and
//     every order there is settled;
//  2. the issuer's ledger matches the merchant's: the approved, non-voided
//     authorizations are exactly the merchant's orders holding an approval
//     (authorized, shipped, delivered), order by order and amount by amount;
//  3. no card debited twice: limit − available is the sum of the card's
//     approved, non-voided authorizations, and no order has two;
//  4. the vault's audit chain verifies ('merchant vault audit verify'),
//     and its primary and backup data stores agree ('merchant vault check');
//
// and, as the carrier sees it, every shipped order has exactly its booking
// and nothing unpaid was booked; as the vault sees it, every order shipped
// to a token holds the cardholder's grant, and every grant was audited.
func (c *Cluster) Verify(ctx context.Context, acked []string) (*Report, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r := &Report{States: map[string]int{}}

	mst, err := c.merchantReader(ctx)
	if err != nil {
		return nil, err
	}
	defer mst.Close()
	orders := map[string]merchantOrder{}
	err = mst.EachBrief(ctx, func(b merchantstore.OrderBrief) error {
		orders[b.ID] = merchantOrder{state: b.State, tracking: b.Tracking, token: b.ShipToken, total: b.Total}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("merchant database: %w", err)
	}

	// 1. Nothing lost, everything settled.
	r.Orders = len(orders)
	for _, o := range orders {
		r.States[o.state]++
		if merchantapi.Settled(o.state) {
			r.Terminal++
		}
	}
	var lost []string
	for _, id := range acked {
		if _, ok := orders[id]; !ok {
			lost = append(lost, id)
		}
	}
	r.Lost = len(lost)
	if r.Lost > 0 {
		r.problem("lost: %d acknowledged orders are not at the merchant, e.g. %s", r.Lost, strings.Join(first(lost, 5), ", "))
	}
	if r.Terminal != r.Orders {
		var stuck []string
		for id, o := range orders {
			if !merchantapi.Settled(o.state) {
				stuck = append(stuck, id+" ("+o.state+")")
			}
		}
		slices.Sort(stuck)
		r.problem("stuck: %d orders at the merchant are not terminal, e.g. %s", len(stuck), strings.Join(first(stuck, 5), ", "))
	}
	jobs, err := mst.Outbox().Count(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("merchant database: %w", err)
	}
	if jobs.Pending > 0 {
		r.problem("merchant outbox: %d relay jobs still pending", jobs.Pending)
	}
	// Every order of the run is valid: a relay given up is an order lost to
	// an outage the relay did not outlast.
	for _, kind := range []string{"authorize", "grant", "book"} {
		st, err := mst.Outbox().Count(ctx, kind)
		if err != nil {
			return nil, fmt.Errorf("merchant database: %w", err)
		}
		r.GivenUp += st.Failed
	}
	if r.GivenUp > 0 {
		r.problem("merchant outbox: %d relay jobs given up (their orders failed)", r.GivenUp)
	}
	voids, err := mst.Outbox().Count(ctx, jobVoid)
	if err != nil {
		return nil, fmt.Errorf("merchant database: %w", err)
	}
	if voids.Failed > 0 {
		r.problem("merchant outbox: %d void jobs failed for good (holds never released)", voids.Failed)
	}

	// 2 and 3: the issuer's ledger.
	ist, err := c.issuerReader(ctx)
	if err != nil {
		return nil, err
	}
	defer ist.Close()
	type auth struct {
		card     string
		amount   int64
		decision string
		voided   bool
	}
	auths := map[string]auth{}
	dupAuth := 0
	stored, err := ist.Authorizations(ctx, issuerstore.AuthFilter{Merchant: MerchantID})
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	r.Authorizations = len(stored)
	for _, sa := range stored {
		if _, dup := auths[sa.OrderID]; dup {
			dupAuth++
		}
		auths[sa.OrderID] = auth{card: sa.CardID, amount: sa.Amount, decision: sa.Decision, voided: sa.Voided}
	}
	if dupAuth > 0 {
		r.problem("double authorization: %d orders hold more than one authorization", dupAuth)
	}
	var issuerSum, merchantSum int64
	held := map[string]int64{} // card → Σ approved, non-voided
	var onlyIssuer, onlyMerchant, amountDiff []string
	for id, a := range auths {
		if a.decision == issuerapi.Approved && a.voided {
			r.Voided++
		}
		if a.decision != issuerapi.Approved || a.voided {
			continue
		}
		issuerSum += a.amount
		held[a.card] += a.amount
		o, ok := orders[id]
		switch {
		case !ok || !holdsApproval(o.state):
			onlyIssuer = append(onlyIssuer, fmt.Sprintf("%s (%s)", id, cmp.Or(o.state, "not at the merchant")))
		case o.total != a.amount:
			amountDiff = append(amountDiff, fmt.Sprintf("%s (merchant %d, issuer %d)", id, o.total, a.amount))
		}
	}
	for id, o := range orders {
		if !holdsApproval(o.state) {
			continue
		}
		merchantSum += o.total
		if a, ok := auths[id]; !ok || a.decision != issuerapi.Approved || a.voided {
			onlyMerchant = append(onlyMerchant, fmt.Sprintf("%s (%s)", id, o.state))
		}
	}
	if issuerSum != merchantSum || len(onlyIssuer)+len(onlyMerchant)+len(amountDiff) > 0 {
		r.problem("ledger: issuer holds %d cents of approvals, the merchant's approved orders total %d", issuerSum, merchantSum)
	}
	if len(onlyIssuer) > 0 {
		slices.Sort(onlyIssuer)
		r.problem("ledger: %d approvals held at the issuer for orders the merchant does not count as approved, e.g. %s",
			len(onlyIssuer), strings.Join(first(onlyIssuer, 5), ", "))
	}
	if len(onlyMerchant) > 0 {
		slices.Sort(onlyMerchant)
		r.problem("ledger: %d approved merchant orders without a live approval at the issuer, e.g. %s",
			len(onlyMerchant), strings.Join(first(onlyMerchant, 5), ", "))
	}
	if len(amountDiff) > 0 {
		r.problem("ledger: %d approvals for another amount than the order's, e.g. %s", len(amountDiff), strings.Join(first(amountDiff, 5), ", "))
	}
	overDebited := 0
	cards, err := ist.Cards(ctx)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	for _, card := range cards {
		switch debited := card.Limit - card.Available; {
		case debited > held[card.ID]:
			overDebited++
			r.problem("card ****%s debited %d cents, its live approvals hold %d: debited twice", card.Last4, debited, held[card.ID])
		case debited < held[card.ID]:
			r.problem("card ****%s debited %d cents, its live approvals hold %d: a hold was released twice", card.Last4, debited, held[card.ID])
		}
	}
	r.DoubleDebits = overDebited + dupAuth

	// The carrier: every shipped order booked once, with its tracking
	// number; nothing booked that the merchant does not ship.
	cst, err := c.carrierReader(ctx)
	if err != nil {
		return nil, err
	}
	defer cst.Close()
	shipments, err := cst.MerchantShipments(ctx, MerchantID)
	if err != nil {
		return nil, fmt.Errorf("carrier database: %w", err)
	}
	r.Shipments = len(shipments)
	booked := map[string]string{}
	for _, sh := range shipments {
		booked[sh.OrderID] = sh.Tracking
	}
	var unbooked, unpaid []string
	for id, o := range orders {
		shipped := o.state == merchantapi.StateShipped || o.state == merchantapi.StateDelivered
		if t, ok := booked[id]; shipped && (!ok || t != o.tracking) {
			unbooked = append(unbooked, fmt.Sprintf("%s (merchant %q, carrier %q)", id, o.tracking, t))
		}
	}
	for id := range booked {
		if o := orders[id]; o.state != merchantapi.StateShipped && o.state != merchantapi.StateDelivered {
			unpaid = append(unpaid, fmt.Sprintf("%s (%s)", id, cmp.Or(o.state, "not at the merchant")))
		}
	}
	if len(unbooked) > 0 {
		slices.Sort(unbooked)
		r.problem("carrier: %d shipped orders without their booking, e.g. %s", len(unbooked), strings.Join(first(unbooked, 5), ", "))
	}
	if len(unpaid) > 0 {
		slices.Sort(unpaid)
		r.problem("carrier: %d bookings for orders the merchant does not ship, e.g. %s", len(unpaid), strings.Join(first(unpaid, 5), ", "))
	}

	// The vault: every order shipped to a token holds the cardholder's grant,
	// and every grant is in the audit log.
	vidx, err := c.vaultIndexReader(ctx)
	if err != nil {
		return nil, err
	}
	defer vidx.Close()
	// Every grant is audited as made (pending from a vault section, or
	// active from a carrier's deposit), and an active one made pending also
	// as activated by the issuer's approval (DESIGN.md §7).
	audited := map[[2]string]bool{}   // (order id, token) of every grant audited as made
	activated := map[[2]string]bool{} // … and as activated
	for _, f := range []struct {
		kind, outcome string
		into          map[[2]string]bool
	}{{"grant", "ok:pending", audited}, {"deposit-grant", "ok:active", audited}, {"deposit-grant", "ok:active", activated}, {"grant-activate", "ok", activated}} {
		events, err := vidx.AuditFind(ctx, f.kind, f.outcome)
		if err != nil {
			return nil, fmt.Errorf("vault index: %w", err)
		}
		for _, ev := range events {
			f.into[[2]string{ev.OrderID, ev.Token}] = true
		}
	}
	grants, err := vidx.GrantsOf(ctx, MerchantID)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	r.Grants = len(grants)
	granted := map[string]bool{}
	unaudited := 0
	for _, g := range grants {
		if g.State == vaultstore.GrantActive {
			granted[g.OrderID] = true
		}
		k := [2]string{g.OrderID, g.Token}
		if !audited[k] || (g.State == vaultstore.GrantActive && !activated[k]) {
			unaudited++
		}
	}
	var ungranted []string
	for id, o := range orders {
		if o.token != "" && (o.state == merchantapi.StateShipped || o.state == merchantapi.StateDelivered) && !granted[id] {
			ungranted = append(ungranted, id)
		}
	}
	if len(ungranted) > 0 {
		slices.Sort(ungranted)
		r.problem("vault: %d orders shipped to a token without the cardholder's grant, e.g. %s", len(ungranted), strings.Join(first(ungranted, 5), ", "))
	}
	if unaudited > 0 {
		r.problem("vault: %d grants have no audit entry", unaudited)
	}

	// 4. The vault's audit chain.
	verify := []string{"vault", "audit", "verify", "-index", c.DSN(Vault), "-data-key", c.Path("vault", "data.key")}
	if b := c.vaultBackup(); b != "" {
		verify = append(verify, "-backup", b)
	} else {
		verify = append(verify, "-data", c.vaultData())
	}
	if out, err := c.Run(ctx, "", "merchant", verify...); err != nil {
		r.problem("vault audit: %v", err)
	} else {
		c.Logf("cluster: vault %s", strings.TrimSpace(out))
	}
	// The backup data store is written through: every record the index
	// points to must be in both data stores, alike, after any crash. A
	// record no index entry points to (a registration killed between its
	// data writes and its index entry) is an orphan: reported, not failed.
	if c.vaultBackup() == "" {
		return r, nil // one data store: nothing to compare it with
	}
	out, err := c.Run(ctx, "", "merchant", append([]string{"vault", "check", "-data-key", c.Path("vault", "data.key")}, c.vaultStoreFlags()...)...)
	if err == nil {
		c.Logf("cluster: vault primary and backup data stores agree")
		return r, nil
	}
	indexed := map[string]bool{}
	for tok, terr := range vidx.Tokens(ctx) {
		if terr != nil {
			return nil, fmt.Errorf("vault index: %w", terr)
		}
		indexed[tok] = true
	}
	var live, orphans []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		kind, tok, ok := strings.Cut(line, "\t")
		switch {
		case !ok:
			continue
		case indexed[tok]:
			live = append(live, kind+" "+tok)
		default:
			orphans = append(orphans, kind+" "+tok)
		}
	}
	if len(live) > 0 || len(orphans) == 0 {
		r.problem("vault check: primary and backup data stores differ for %d indexed tokens, e.g. %s (%v)",
			len(live), strings.Join(first(live, 5), ", "), err)
	}
	if len(orphans) > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("vault check: %d records no index entry points to differ between primary and backup "+
			"(orphans of registrations killed mid-write; 'merchant vault check' exits 1 for them): %s", len(orphans), strings.Join(first(orphans, 5), ", ")))
	}
	return r, nil
}

// holdsApproval reports whether a merchant order state stands on a live
// approval at the issuer.
func holdsApproval(state string) bool {
	switch state {
	case merchantapi.StateAuthorized, merchantapi.StateShipped, merchantapi.StateDelivered:
		return true
	}
	return false
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }
