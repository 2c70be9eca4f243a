package cluster

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/tick"
	issuerapi "orderseal/issuer/api"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	merchantstore "orderseal/merchant/store"
	"orderseal/order"
)

// DriverConfig shapes the load. The zero value is one order at a time per
// client, all approved, all shipped to vault tokens.
type DriverConfig struct {
	Clients     int     // concurrent simulated cardholders; 0: 8 (client i buys as cardholder i mod N)
	Seed        uint64  // seeds every client's choices (items, declines, inline addresses)
	DeclineRate float64 // share of orders holding the item priced above the card limit
	InlineRate  float64 // share shipped to an inline address instead of the vault token
	// NewRate is the share of orders placed by a new cardholder, one of the
	// cluster's pool (Config.NewCardholders) that no daemon has derived a
	// pairwise key with; the others come from the client's returning
	// cardholder. When the pool runs dry the order is a returning one
	// (Record.New false; Summary.New counts the new ones).
	NewRate     float64
	MaxInFlight int           // unsettled orders a client may have before it waits; 0: 1
	Think       time.Duration // mean pause between a client's orders; 0: none
	SubmitFor   time.Duration // how long one bundle is resubmitted before it counts as not accepted; 0: 2 min
	FollowFor   time.Duration // how long a client waits for one order to settle before moving on; 0: 2 min
	Poll        time.Duration // merchant database poll for settled orders; 0: 50 ms
	HTTPTimeout time.Duration // per request; 0: 10 s
}

func (cfg *DriverConfig) defaults() {
	cfg.Clients = cmp.Or(cfg.Clients, 8)
	cfg.MaxInFlight = cmp.Or(cfg.MaxInFlight, 1)
	cfg.SubmitFor = cmp.Or(cfg.SubmitFor, 2*time.Minute)
	cfg.FollowFor = cmp.Or(cfg.FollowFor, 2*time.Minute)
	cfg.Poll = cmp.Or(cfg.Poll, 50*time.Millisecond)
	cfg.HTTPTimeout = cmp.Or(cfg.HTTPTimeout, 10*time.Second)
}

// Record is one order the driver placed.
type Record struct {
	ID         string
	Client     int
	Cardholder string
	Total      int64
	Decline    bool      // holds the item priced above the limit: must be declined
	Inline     bool      // ships to an inline address (the carrier deposits it in the vault)
	New        bool      // placed by a new cardholder (DriverConfig.NewRate)
	Submitted  time.Time // first submit
	Accepted   time.Time // the merchant's 202; zero: never accepted
	Attempts   int       // submissions of the same bundle
	Err        error     // why it was never accepted
	State      string    // last state seen at the merchant
	Reason     string    // decline or failure code
	Settled    time.Time // first settled state (the merchant's timeline once read, else when seen)

	done chan struct{} // closed when settled
}

// Driver places orders for the cluster's cardholders with the SDK: order.Seal
// and the merchant client, resubmitting the same bundle on a network error or
// a 5xx until the merchant answers. It follows orders in the merchant's
// store, through its read interface opened read-only.
type Driver struct {
	c       *Cluster
	cfg     DriverConfig
	clients []*merchantapi.Client // per cardholder
	hc      *http.Client
	// directory is the order form's directory entries (OS2), sealed to.
	directory []*keygen.DirectoryEntry

	mu          sync.Mutex
	records     []*Record
	unsettled   map[string]*Record // accepted, not yet seen settled
	retryCauses map[string]int     // why bundles were resubmitted, by cause

	retries  atomic.Int64
	accepted atomic.Int64
	settled  atomic.Int64
	dbErr    atomic.Value // string: last merchant database error of the watcher

	stopWatch context.CancelFunc
	watchDone chan struct{}
	closeOnce sync.Once
	orders    merchantstore.Reader
}

// NewDriver prepares a driver and starts following the merchant database.
// Close stops it.
func NewDriver(c *Cluster, cfg DriverConfig) (*Driver, error) {
	cfg.defaults()
	d := &Driver{c: c, cfg: cfg, unsettled: map[string]*Record{}, retryCauses: map[string]int{}}
	d.hc = &http.Client{Timeout: cfg.HTTPTimeout, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		MaxIdleConns:        2 * cfg.Clients,
		MaxIdleConnsPerHost: 2 * cfg.Clients,
		IdleConnTimeout:     30 * time.Second,
	}}
	for _, ch := range c.Cardholders() {
		mc, err := merchantapi.NewClient(ch.Key, c.PeerURL(Merchant), MerchantID, d.hc)
		if err != nil {
			return nil, err
		}
		d.clients = append(d.clients, mc)
	}
	if c.Epochal() && len(d.clients) > 0 {
		// Under OS2 the order form carries the recipients' directory
		// entries; a cardholder seals to them, once fetched per run. A form
		// lost on the way, or one missing an entry (the merchant's own
		// fetch of it was lost), is asked for again, as a cardholder would.
		var err error
		for try := 0; ; try++ {
			if d.directory, err = d.formDirectory(); err == nil || try == 50 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return nil, err
		}
	}
	orders, err := c.merchantReader(context.Background())
	if err != nil {
		return nil, err
	}
	d.orders = orders
	ctx, cancel := context.WithCancel(context.Background())
	d.stopWatch, d.watchDone = cancel, make(chan struct{})
	go d.watch(ctx)
	return d, nil
}

// formDirectory fetches the order form and returns its directory entries,
// which must name the issuer, the carrier and the vault.
func (d *Driver) formDirectory() ([]*keygen.DirectoryEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.HTTPTimeout)
	defer cancel()
	form, err := d.clients[0].OrderForm(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: order form: %w", err)
	}
	for _, id := range []string{IssuerID, CarrierID, VaultID} {
		if !slices.ContainsFunc(form.Directory, func(e *keygen.DirectoryEntry) bool { return e.Identity == id }) {
			return nil, fmt.Errorf("cluster: the order form has no directory entry of %s", id)
		}
	}
	return form.Directory, nil
}

// Close stops following the merchant database. Safe to call more than once.
func (d *Driver) Close() {
	d.closeOnce.Do(func() {
		d.stopWatch()
		<-d.watchDone
		d.orders.Close()
		d.hc.CloseIdleConnections()
	})
}

// Run runs the clients until ctx ends, then lets each finish the submission
// it is in (bounded by SubmitFor) and returns. Orders still unsettled are
// left to WaitSettled.
func (d *Driver) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range d.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.client(ctx, i)
		}()
	}
	wg.Wait()
}

func (d *Driver) client(ctx context.Context, i int) {
	chs := d.c.Cardholders()
	ch, mc := chs[i%len(chs)], d.clients[i%len(chs)]
	rng := rand.New(rand.NewPCG(d.cfg.Seed, uint64(i)+1))
	var pending []*Record
	for {
		pending = slices.DeleteFunc(pending, func(r *Record) bool { return isClosed(r.done) })
		for len(pending) >= d.cfg.MaxInFlight {
			oldest := pending[0]
			select {
			case <-oldest.done:
			case <-time.After(d.cfg.FollowFor - time.Since(oldest.Accepted)):
			case <-ctx.Done():
				return
			}
			pending = pending[1:]
		}
		if ctx.Err() != nil {
			return
		}
		buyer, bmc, fresh := ch, mc, false
		if d.cfg.NewRate > 0 && rng.Float64() < d.cfg.NewRate {
			if nc, ok := d.c.NewCardholder(); ok {
				c, err := merchantapi.NewClient(nc.Key, d.c.PeerURL(Merchant), MerchantID, d.hc)
				if err != nil {
					d.add(&Record{Client: i, Cardholder: nc.ID, New: true, Err: err, done: make(chan struct{})})
					return
				}
				buyer, bmc, fresh = nc, c, true
			}
		}
		rec, b, err := d.compose(buyer, i, rng)
		rec.New = fresh
		if err != nil {
			rec.Err = err
			d.add(rec)
			return // a sealing error is the harness's bug: stop this client
		}
		d.add(rec)
		if d.submit(ctx, bmc, rec, b) {
			pending = append(pending, rec)
		}
		if d.cfg.Think > 0 {
			select {
			case <-time.After(time.Duration(rng.ExpFloat64() * float64(d.cfg.Think))):
			case <-ctx.Done():
			}
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (d *Driver) add(r *Record) {
	d.mu.Lock()
	d.records = append(d.records, r)
	d.mu.Unlock()
}

// Address is cardholder i's registered home address.
func Address(i int) order.Address {
	return order.Address{Name: fmt.Sprintf("Holder %03d", i), Line1: fmt.Sprintf("Teststrasse %d", i+1),
		City: "Berlin", PostalCode: "10115", Country: "DE"}
}

// compose draws an order for ch and seals it.
func (d *Driver) compose(ch *Cardholder, client int, rng *rand.Rand) (*Record, *order.Bundle, error) {
	var items []order.Item
	for _, j := range rng.Perm(len(CatalogItems))[:1+rng.IntN(3)] {
		it := CatalogItems[j]
		items = append(items, order.Item{SKU: it.SKU, Name: it.Name, Qty: 1 + rng.Int64N(3), UnitPrice: it.Price})
	}
	rec := &Record{Client: client, Cardholder: ch.ID, done: make(chan struct{})}
	if rng.Float64() < d.cfg.DeclineRate {
		it := d.c.DeclineItem()
		items = append(items, order.Item{SKU: it.SKU, Name: it.Name, Qty: 1, UnitPrice: it.Price})
		rec.Decline = true
	}
	for _, it := range items {
		rec.Total += it.Qty * it.UnitPrice
	}
	o := &order.Order{
		Buyer: order.Buyer{Name: fmt.Sprintf("Holder %03d", ch.Index), Phone: fmt.Sprintf("+4915110%06d", ch.Index),
			Email: fmt.Sprintf("c%03d@stress.example", ch.Index)},
		Card:  order.Card{Number: ch.Card, Expiry: ch.Expiry},
		Items: items, Total: rec.Total, Currency: "EUR", Plan: order.Plan{Installments: 1},
		Recipient: order.Recipient{Name: fmt.Sprintf("Holder %03d", ch.Index), Phone: fmt.Sprintf("+4915120%06d", ch.Index)},
	}
	parties := order.Parties{Merchant: MerchantID, Issuer: IssuerID, Carrier: CarrierID}
	if rng.Float64() < d.cfg.InlineRate {
		a := Address(ch.Index)
		a.Line1 = fmt.Sprintf("Packstation %d", 100+rng.IntN(900))
		o.ShipTo.Address = &a
		rec.Inline = true
	} else {
		o.ShipTo.Token = ch.Token
		parties.Vault = VaultID
	}
	rec.Submitted = time.Now()
	b, err := order.Seal(o, ch.Key, parties, order.SealOptions{Directory: d.directory})
	if err != nil {
		return rec, nil, fmt.Errorf("cluster: sealing an order: %w", err)
	}
	rec.ID = b.OrderID
	return rec, b, nil
}

// retryable reports whether a submission may be repeated: a network error,
// an unverifiable answer, or a 5xx, 408 or 429 problem. Any other problem is
// the merchant's considered refusal.
func retryable(err error) bool {
	var p *rfc9457.Problem
	if errors.As(err, &p) {
		return p.Status >= 500 || p.Status == http.StatusRequestTimeout || p.Status == http.StatusTooManyRequests
	}
	return true
}

// submit sends b until the merchant accepts it, refuses it, or SubmitFor
// runs out (ctx ending does not cut a submission short: an order half
// submitted is the case chaos is about). It reports acceptance.
func (d *Driver) submit(ctx context.Context, mc *merchantapi.Client, rec *Record, b *order.Bundle) bool {
	hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SubmitFor)
	defer cancel()
	backoff := 50 * time.Millisecond
	var last error
	fail := func(err error) bool {
		d.mu.Lock()
		rec.Err = err
		d.mu.Unlock()
		return false
	}
	for attempts := 1; ; attempts++ {
		d.mu.Lock()
		rec.Attempts = attempts
		d.mu.Unlock()
		acc, err := mc.Submit(hard, b)
		if err == nil {
			if acc.OrderID != b.OrderID {
				return fail(fmt.Errorf("merchant answered order %s for %s", acc.OrderID, b.OrderID))
			}
			d.mu.Lock()
			rec.Accepted, rec.State = time.Now(), acc.State
			if merchantapi.Settled(acc.State) { // a resubmission after the order settled
				rec.Settled = rec.Accepted
				close(rec.done)
				d.settled.Add(1)
			} else {
				d.unsettled[rec.ID] = rec
			}
			d.mu.Unlock()
			d.accepted.Add(1)
			return true
		}
		if !retryable(err) {
			return fail(err)
		}
		last = err
		d.retries.Add(1)
		d.noteRetry(err)
		select {
		case <-time.After(backoff + rand.N(backoff/2)):
		case <-hard.Done():
			return fail(fmt.Errorf("not accepted within %s (%d attempts): %w", d.cfg.SubmitFor, attempts, last))
		}
		backoff = min(2*backoff, time.Second)
	}
}

// noteRetry counts a resubmission under its cause: the problem code, or
// the error's last words (a network error ends in its syscall's message).
func (d *Driver) noteRetry(err error) {
	var p *rfc9457.Problem
	cause := err.Error()
	if errors.As(err, &p) {
		cause = fmt.Sprintf("HTTP %d %s", p.Status, p.Code)
	} else if i := strings.LastIndex(cause, ": "); i >= 0 {
		cause = cause[i+2:]
	}
	if len(cause) > 80 {
		cause = cause[:80]
	}
	d.mu.Lock()
	if len(d.retryCauses) < 20 || d.retryCauses[cause] > 0 {
		d.retryCauses[cause]++
	}
	d.mu.Unlock()
}

// RetryCauses counts resubmissions by cause (at most 20 causes).
func (d *Driver) RetryCauses() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.retryCauses)
}

// watch polls the merchant database for the unsettled orders until ctx ends.
func (d *Driver) watch(ctx context.Context) {
	defer close(d.watchDone)
	tick.Every(ctx, d.cfg.Poll, func() {
		d.mu.Lock()
		ids := make([]string, 0, len(d.unsettled))
		for id := range d.unsettled {
			ids = append(ids, id)
		}
		d.mu.Unlock()
		for len(ids) > 0 {
			n := min(len(ids), 500)
			if err := d.poll(ctx, ids[:n]); err != nil && ctx.Err() == nil {
				d.dbErr.Store(err.Error())
			}
			ids = ids[n:]
		}
	})
}

func (d *Driver) poll(ctx context.Context, ids []string) error {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	briefs, err := d.orders.Briefs(qctx, ids)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, b := range briefs {
		d.mu.Lock()
		if r := d.unsettled[b.ID]; r != nil {
			r.State, r.Reason = b.State, b.Reason
			if merchantapi.Settled(b.State) {
				r.Settled = now
				delete(d.unsettled, b.ID)
				close(r.done)
				d.settled.Add(1)
			}
		}
		d.mu.Unlock()
	}
	return nil
}

// WaitSettled waits until every accepted order has settled, or ctx ends.
func (d *Driver) WaitSettled(ctx context.Context) error {
	for {
		d.mu.Lock()
		n := len(d.unsettled)
		d.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d accepted orders still unsettled: %w", n, ctx.Err())
		case <-time.After(d.cfg.Poll):
		}
	}
}

// Progress counts orders so far.
type Progress struct {
	Submitted, Accepted, Settled, Unsettled int
	Retries                                 int64
	DBError                                 string // the watcher's last database error, if any
}

// Progress is a snapshot of the counters.
func (d *Driver) Progress() Progress {
	d.mu.Lock()
	p := Progress{Submitted: len(d.records), Unsettled: len(d.unsettled)}
	d.mu.Unlock()
	p.Accepted, p.Settled, p.Retries = int(d.accepted.Load()), int(d.settled.Load()), d.retries.Load()
	if s, ok := d.dbErr.Load().(string); ok {
		p.DBError = s
	}
	return p
}

// Acked returns the ids of every order the merchant accepted.
func (d *Driver) Acked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for _, r := range d.records {
		if !r.Accepted.IsZero() {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// Records returns copies of every record.
func (d *Driver) Records() []Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Record, len(d.records))
	for i, r := range d.records {
		out[i] = *r
		out[i].done = nil
	}
	return out
}

// settledStates are the merchant's states an order settles in
// (merchantapi.Settled).
var settledStates = []string{merchantapi.StateDeclined, merchantapi.StateShipped, merchantapi.StateDelivered, merchantapi.StateFailed}

// ReadSettleTimes replaces the observed settle times of the driver's
// accepted orders with the merchant's own timeline (millisecond stamps of
// the first settled state), and refreshes each one's final state and
// reason. It reads only those orders, so a merchant database holding
// millions of others costs no more.
func (d *Driver) ReadSettleTimes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ids := d.Acked()
	at, err := d.orders.FirstReached(ctx, ids, settledStates)
	if err != nil {
		return err
	}
	briefs, err := d.orders.Briefs(ctx, ids)
	if err != nil {
		return err
	}
	state := map[string][2]string{}
	for _, b := range briefs {
		state[b.ID] = [2]string{b.State, b.Reason}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.records {
		if s, ok := state[r.ID]; ok && !r.Accepted.IsZero() {
			r.State, r.Reason = s[0], s[1]
		}
		if t, ok := at[r.ID]; ok && !r.Accepted.IsZero() {
			r.Settled = t
		}
	}
	return nil
}

// Summary is what a run amounts to.
type Summary struct {
	Orders      int // placed (sealed and submitted at least once)
	New         int // of them, placed by a new cardholder
	Accepted    int
	NotAccepted int
	Settled     int
	Unsettled   int
	States      map[string]int // final states of accepted orders
	Failed      int            // accepted orders that ended failed
	// UnexpectedDecline counts orders within the limit that were declined;
	// UnexpectedApproval, orders above it that were not.
	UnexpectedDecline, UnexpectedApproval int
	Retries                               int64
	Span                                  time.Duration // first submit to last acceptance
	AcceptP50, AcceptP99                  time.Duration // first submit → 202
	SettleP50, SettleP99                  time.Duration // first submit → first settled state
	FirstErrors                           []string      // a few examples
}

// Errors counts what a soak must not see: orders not accepted, failed,
// unsettled, or decided against their design.
func (s Summary) Errors() int {
	return s.NotAccepted + s.Failed + s.Unsettled + s.UnexpectedDecline + s.UnexpectedApproval
}

// Summarize computes the summary of the driver's records.
func (d *Driver) Summarize() Summary {
	recs := d.Records()
	s := Summary{Orders: len(recs), States: map[string]int{}, Retries: d.retries.Load()}
	var acc, set []time.Duration
	var first, last time.Time
	note := func(format string, a ...any) {
		if len(s.FirstErrors) < 5 {
			s.FirstErrors = append(s.FirstErrors, fmt.Sprintf(format, a...))
		}
	}
	for _, r := range recs {
		if r.New {
			s.New++
		}
		if first.IsZero() || r.Submitted.Before(first) {
			first = r.Submitted
		}
		if r.Accepted.IsZero() {
			s.NotAccepted++
			note("order %s (%s): %v", r.ID, r.Cardholder, r.Err)
			continue
		}
		s.Accepted++
		if r.Accepted.After(last) {
			last = r.Accepted
		}
		acc = append(acc, r.Accepted.Sub(r.Submitted))
		s.States[r.State]++
		if !merchantapi.Settled(r.State) {
			s.Unsettled++
			note("order %s (%s): still %s", r.ID, r.Cardholder, r.State)
			continue
		}
		s.Settled++
		if !r.Settled.IsZero() {
			set = append(set, max(0, r.Settled.Sub(r.Submitted)))
		}
		switch {
		case r.State == merchantapi.StateFailed:
			s.Failed++
			note("order %s (%s): failed: %s", r.ID, r.Cardholder, r.Reason)
		case r.Decline && (r.State != merchantapi.StateDeclined || r.Reason != issuerapi.ReasonInsufficientCredit):
			s.UnexpectedApproval++
			note("order %s (%s) above the limit: %s %s", r.ID, r.Cardholder, r.State, r.Reason)
		case !r.Decline && r.State == merchantapi.StateDeclined:
			s.UnexpectedDecline++
			note("order %s (%s) within the limit: declined %s", r.ID, r.Cardholder, r.Reason)
		}
	}
	if !last.IsZero() {
		s.Span = last.Sub(first)
	}
	s.AcceptP50, s.AcceptP99 = Percentile(acc, 50), Percentile(acc, 99)
	s.SettleP50, s.SettleP99 = Percentile(set, 50), Percentile(set, 99)
	return s
}

// Percentile is the p-th percentile (nearest rank) of ds; 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// WriteCSV writes one line per order placed: id, client, cardholder, total,
// designed outcome, ship-to kind, first submit, acceptance and settle times
// (RFC 3339 with milliseconds), attempts, state, reason and error.
func (d *Driver) WriteCSV(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"order_id", "client", "cardholder", "total", "design", "ship_to", "submitted", "accepted", "settled",
		"attempts", "state", "reason", "error"})
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	for _, r := range d.Records() {
		design, ship, errText := "approve", "token", ""
		if r.Decline {
			design = "decline"
		}
		if r.Inline {
			ship = "inline"
		}
		if r.Err != nil {
			errText = r.Err.Error()
		}
		w.Write([]string{r.ID, strconv.Itoa(r.Client), r.Cardholder, strconv.FormatInt(r.Total, 10), design, ship,
			stamp(r.Submitted), stamp(r.Accepted), stamp(r.Settled), strconv.Itoa(r.Attempts), r.State, r.Reason, errText})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
