package dashboard

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"orderseal/internal/outbox"
	"orderseal/internal/web"
	"orderseal/keygen"
	"orderseal/merchant/store"
	"orderseal/order"
	"orderseal/order/money"
)

// Bounds of what one page lists.
const (
	maxOrders  = 200
	maxJobs    = 500
	maxErrText = 160
)

var funcs = template.FuncMap{
	"money": money.Format,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"dash": func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	},
	"short": func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		return hex.EncodeToString(b[:min(len(b), 8)]) + "…"
	},
	"clip": clip,
}

// clip bounds an error message to one short line.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxErrText {
		cut := maxErrText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// orderRow is an order as the list shows it: tokens and totals, never the
// buyer's contact details.
type orderRow struct {
	ID, State, Reason, Channel  string
	Total                       int64
	Currency                    string
	Issuer, ShipToken, Tracking string
	AuthCode                    string
	Created                     time.Time
}

func rowOf(o *store.Order) orderRow {
	ch := "online"
	if o.Session != "" {
		ch = "assisted"
	}
	return orderRow{ID: o.ID, State: o.State, Reason: o.Reason, Channel: ch, Total: o.Total, Currency: o.Currency,
		Issuer: o.Issuer, ShipToken: o.ShipToken, Tracking: o.Tracking, AuthCode: o.AuthCode, Created: o.Created}
}

type stateCount struct {
	State string
	N     int
}

func (d *Dashboard) orders(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	state := r.URL.Query().Get("state")
	counts, err := d.opt.Store.Counts(ctx)
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	list, err := d.opt.Store.List(ctx, maxOrders)
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	var rows []orderRow
	for _, o := range list {
		if state == "" || o.State == state {
			rows = append(rows, rowOf(o))
		}
	}
	var cs []stateCount
	total := 0
	for st, n := range counts {
		cs = append(cs, stateCount{st, n})
		total += n
	}
	slices.SortFunc(cs, func(a, b stateCount) int { return strings.Compare(a.State, b.State) })
	d.render(w, r, http.StatusOK, "orders.html", page{Title: "Orders", Nav: "orders", Data: map[string]any{
		"Rows": rows, "Counts": cs, "Total": total, "State": state, "Shown": len(list), "Max": maxOrders}})
}

// orderDetail is one order with its timeline, jobs and audit.
type orderDetail struct {
	orderRow
	Sealer, Carrier, Vault, Invoice string
	IssuerSectionHash               []byte
	Items                           []order.Item
	Timeline                        []store.Event
	Jobs                            []outbox.Entry
	Session                         *store.Session
	SessionState                    string
}

func (d *Dashboard) order(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	o, err := d.opt.Store.Get(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		d.fail(w, r, http.StatusNotFound, CodeUnknownOrder, "No such order.")
		return
	}
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	od := orderDetail{orderRow: rowOf(o), Sealer: o.Cardholder, Carrier: o.Carrier, Vault: o.Vault, Invoice: o.Invoice,
		IssuerSectionHash: o.IssuerSectionHash}
	if err := json.Unmarshal(o.Items, &od.Items); err != nil {
		d.log.Warn("dashboard order items unreadable", "order", o.ID, "err", err)
	}
	if od.Timeline, err = d.opt.Store.Timeline(ctx, o.ID); err != nil {
		d.unavailable(w, r, err)
		return
	}
	jobs, err := d.opt.Store.Outbox().List(ctx, "")
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	for _, j := range jobs {
		if j.Key == o.ID {
			j.LastError = clip(j.LastError)
			od.Jobs = append(od.Jobs, j)
		}
	}
	if o.Session != "" {
		if od.Session, err = d.opt.Store.Session(ctx, o.Session); err != nil && !errors.Is(err, store.ErrNoSession) {
			d.unavailable(w, r, err)
			return
		}
		if od.Session != nil {
			od.SessionState = od.Session.State(d.now())
		}
	}
	d.render(w, r, http.StatusOK, "order.html", page{Title: "Order " + o.ID, Nav: "orders", Data: od})
}

func (d *Dashboard) outbox(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if outbox.CheckState(state) != nil {
		d.fail(w, r, http.StatusBadRequest, CodeBadRequest, "Unknown job state; use pending, failed or done.")
		return
	}
	jobs, err := d.opt.Store.Outbox().List(r.Context(), state)
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	more := len(jobs) > maxJobs
	jobs = jobs[:min(len(jobs), maxJobs)]
	dead := 0
	for i := range jobs {
		jobs[i].LastError = clip(jobs[i].LastError)
		if jobs[i].State == outbox.StateFailed {
			dead++
		}
	}
	p := page{Title: "Relay outbox", Nav: "outbox", Data: map[string]any{"Jobs": jobs, "State": state, "More": more, "Dead": dead}}
	if q.Has("redriven") {
		n, _ := strconv.Atoi(q.Get("redriven"))
		k, _ := strconv.Atoi(q.Get("skipped"))
		p.Notice = strconv.Itoa(n) + " dead letters re-driven, " + strconv.Itoa(k) + " skipped; the relay picks them up at its next poll."
	}
	d.render(w, r, http.StatusOK, "outbox.html", p)
}

// retry re-drives one dead letter (id) or all of them (all=1).
func (d *Dashboard) retry(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	all := r.PostForm.Get("all") == "1"
	id, err := strconv.ParseInt(r.PostForm.Get("id"), 10, 64)
	if !all && err != nil {
		d.fail(w, r, http.StatusBadRequest, CodeBadRequest, "Name a dead letter to retry.")
		return
	}
	dead, err := d.opt.Store.Outbox().List(ctx, outbox.StateFailed)
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	redriven, skipped := 0, 0
	for _, e := range dead {
		if !all && e.ID != id {
			continue
		}
		ok, why, err := d.opt.Redrive(ctx, e)
		if err != nil {
			d.unavailable(w, r, err)
			return
		}
		if why != "" {
			skipped++
			continue
		}
		if !ok {
			continue
		}
		redriven++
		d.log.Info("dashboard re-drove a dead letter", "operator", operatorOf(r).Name, "kind", e.Kind, "order", e.Key)
	}
	http.Redirect(w, r, Prefix+"outbox?state=failed&redriven="+strconv.Itoa(redriven)+"&skipped="+strconv.Itoa(skipped), http.StatusSeeOther)
}

// sessionAudit is one consultant login with the orders keyed in it.
type sessionAudit struct {
	*store.Session
	State  string
	Orders []orderRow
}

func (d *Dashboard) audit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("order")); id != "" {
		http.Redirect(w, r, Prefix+"orders/"+urlPath(id), http.StatusSeeOther)
		return
	}
	data := map[string]any{}
	p := page{Title: "Consultant audit", Nav: "audit", Data: data}
	// The consultants behind the newest assisted orders, to pick from.
	list, err := d.opt.Store.List(ctx, maxOrders)
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	seen := map[string]bool{}
	var known []string
	for _, o := range list {
		if o.Session != "" && !seen[o.Cardholder] {
			seen[o.Cardholder] = true
			known = append(known, o.Cardholder)
		}
	}
	slices.Sort(known)
	data["Known"] = known
	c := strings.TrimSpace(q.Get("consultant"))
	data["Consultant"] = c
	if c == "" {
		d.render(w, r, http.StatusOK, "audit.html", p)
		return
	}
	if err := keygen.ValidateIdentity(c); err != nil || keygen.RoleOf(c) != keygen.RoleConsultant {
		p.Error, p.Code = "Name a consultant as consultant:NAME.", CodeBadRequest
		d.render(w, r, http.StatusBadRequest, "audit.html", p)
		return
	}
	sessions, err := d.opt.Store.Sessions(ctx, c)
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	now := d.now()
	var out []sessionAudit
	for _, s := range sessions {
		orders, err := d.opt.Store.SessionOrders(ctx, s.ID)
		if err != nil {
			d.unavailable(w, r, err)
			return
		}
		sa := sessionAudit{Session: s, State: s.State(now)}
		for _, o := range orders {
			sa.Orders = append(sa.Orders, rowOf(o))
		}
		out = append(out, sa)
	}
	data["Sessions"] = out
	d.render(w, r, http.StatusOK, "audit.html", p)
}

// urlPath escapes an order id for a path.
func urlPath(s string) string { return url.PathEscape(s) }

// product is the catalog form, with the rules of 'merchant catalog add'.
type product struct {
	SKU      string `validate:"required,max=64,printascii,excludesall= "`
	Name     string `validate:"required,max=200"`
	Price    string
	Currency string
}

func (d *Dashboard) catalog(w http.ResponseWriter, r *http.Request) {
	p := page{}
	if r.URL.Query().Has("saved") {
		p.Notice = "Product saved."
	}
	d.catalogPage(w, r, http.StatusOK, p, product{})
}

func (d *Dashboard) catalogPage(w http.ResponseWriter, r *http.Request, status int, p page, form product) {
	ps, err := d.opt.Store.Catalog(r.Context())
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	if form.Currency == "" {
		form.Currency = "EUR"
		if len(ps) > 0 {
			form.Currency = ps[0].Currency
		}
	}
	p.Title, p.Nav, p.Data = "Catalog", "catalog", map[string]any{"Products": ps, "Form": form}
	d.render(w, r, status, "catalog.html", p)
}

// putProduct adds a product or changes its name and price.
func (d *Dashboard) putProduct(w http.ResponseWriter, r *http.Request) {
	f := product{SKU: strings.TrimSpace(r.PostForm.Get("sku")), Name: strings.TrimSpace(r.PostForm.Get("name")),
		Price: strings.TrimSpace(r.PostForm.Get("price")), Currency: strings.TrimSpace(r.PostForm.Get("currency"))}
	refuse := func(code, msg string) {
		d.catalogPage(w, r, http.StatusUnprocessableEntity, page{Error: msg, Code: code}, f)
	}
	if err := money.Check(f.Currency); err != nil {
		refuse(money.CodeUnsupported, "Currency: "+err.Error())
		return
	}
	if err := web.Validate(&f); err != nil {
		refuse(CodeCatalog, "A product needs a SKU (printable, no spaces, at most 64) and a name (at most 200): "+err.Error())
		return
	}
	price, err := money.ParseInput(f.Price, f.Currency)
	if err != nil || price > 1_000_000_000_000 {
		code, ok := money.Code(err)
		if !ok {
			code = money.CodeAmount
		}
		dg, _ := money.Digits(f.Currency)
		refuse(code, "Price: a decimal with at most "+strconv.Itoa(dg)+" decimals for "+f.Currency+" (12.90), or integer minor units.")
		return
	}
	err = d.opt.Store.PutProduct(r.Context(), store.Product{SKU: f.SKU, Name: f.Name, UnitPrice: price, Currency: f.Currency})
	if errors.Is(err, store.ErrCurrencyMixed) {
		refuse(CodeCatalog, "A shop sells in one currency; the catalog's products are priced in another.")
		return
	}
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	d.log.Info("dashboard catalog change", "operator", operatorOf(r).Name, "sku", f.SKU, "price", price, "currency", f.Currency)
	http.Redirect(w, r, Prefix+"catalog?saved=1", http.StatusSeeOther)
}
