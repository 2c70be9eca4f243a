// Package cluster runs a whole orderseal deployment of the real binaries on
// loopback — key center, vault, issuer, carrier and merchant (DESIGN.md §1,
// §6) — for chaos, soak and benchmark runs. Daemons listen on fixed ports
// chosen at start, so one that is killed comes back on the same address and
// its peers' configured URLs stay valid. Cardholders get enrolled cards and a
// vault address each; a Driver places their orders in-process with the SDK;
// Verify reads every party's own store through its read interface, opened
// read-only, and checks that no acknowledged order was lost and no card was
// debited twice. Only Seed (sqliteseed.go) writes a store's files directly;
// a pool of new cardholders is enrolled through the issuer's store API
// before the issuer serves, as 'issuer card add' does. The stores are
// SQLite files, or PostgreSQL databases (Config.Postgres), where several
// merchant, issuer and carrier nodes can share their party's database
// behind a Balancer each (Config.Merchants, Issuers, Carriers).
//
// Everything is bounded in time and every process writes its log into the
// work directory.
package cluster

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"orderseal/issuer"
	issuerstore "orderseal/issuer/store"
	"orderseal/keygen"
	keycenter "orderseal/keygen/center"
	"orderseal/merchant"
	"orderseal/suite"
	vaultapi "orderseal/vault/api"
)

// Daemon names, in start order.
const (
	Vault    = "vault"
	Issuer   = "issuer"
	Carrier  = "carrier"
	Merchant = "merchant"
)

// Daemons lists the four daemons in start order.
var Daemons = []string{Vault, Issuer, Carrier, Merchant}

// Party identities of a cluster.
const (
	MerchantID = "merchant:shop.example"
	IssuerID   = "issuer:bank.example"
	CarrierID  = "carrier:parcel.example"
	VaultID    = "vault:vault.shop.example"
)

// Binaries the cluster runs.
var Binaries = []string{"keygen", "cardholder", "merchant", "issuer", "carrier"}

// Catalog of every cluster's merchant; prices in EUR cents. DeclineSKU costs
// more than any card's limit, so an order holding it is declined for
// insufficient credit.
var (
	CatalogItems = []CatalogItem{
		{"BOOK-1984.pb", "Nineteen Eighty-Four (paperback)", 1299},
		{"mug_blue-350", "Blue mug, 350 ml", 850},
		{"PEN-steel.f", "Steel fountain pen", 2450},
		{"TEA-sencha-100", "Sencha tea, 100 g", 990},
	}
	DeclineItem = CatalogItem{"PIANO-grand.b", "Concert grand piano", 0} // priced at Config.Limit + 1
)

// CatalogItem is one product of the cluster's merchant.
type CatalogItem struct {
	SKU   string
	Name  string
	Price int64
}

// Config sets up a cluster. Dir is required; the rest has defaults.
type Config struct {
	Dir         string // work directory: keys, databases, logs (created)
	BinDir      string // prebuilt binaries; "": build them into Dir/bin from SourceDir
	SourceDir   string // module root to build from; "": found from the working directory
	Race        bool   // build with -race (when building)
	K           int    // keygen k; 0: 64 (a coalition of K parties could rebuild the master: test only)
	Suite       string // the key center's suite; "": the default (OS2: officers, keystores, directory)
	Cardholders int    // cardholders, each with an enrolled card and a vault address; 0: 8
	// NewCardholders are issued, enrolled and addressed up front like the
	// others, then forgotten by every daemon (the vault restarts after
	// registering their addresses): each places one order, as a cardholder
	// no daemon has derived a pairwise key with yet (DriverConfig.NewRate).
	NewCardholders int
	Limit          int64               // each card's credit limit in cents; 0: 1e9
	RelayPoll      time.Duration       // merchant -relay-poll; 0: 100 ms
	Start          time.Duration       // how long a daemon may take to listen; 0: 30 s
	DaemonArgs     map[string][]string // extra flags per daemon name (e.g. -cpuprofile)
	// LoseAnswers puts a LossyProxy in front of every daemon losing this
	// share of its answers (0: none); the parties and the driver reach each
	// other through them (PeerURL), the harness's own checks directly (URL).
	LoseAnswers float64
	LoseSeed    uint64
	// ClockFile, when set, is the merchant's controlled clock: a file
	// holding the duration its clock runs ahead (merchant.ClockEnv).
	ClockFile string
	// Postgres, when set, puts every party's store on PostgreSQL: the
	// databases it names exist, each reached as its owner (postgres.go).
	Postgres *Postgres
	// Merchants is how many merchant nodes serve, sharing the merchant's
	// database behind a Balancer that parties and drivers reach them
	// through; 0: 1. More than one needs Postgres.
	Merchants int
	// Issuers and Carriers are how many issuer and carrier nodes serve,
	// each party's nodes sharing its database behind a Balancer of their
	// own, as the merchant nodes do; 0: 1. More than one needs Postgres.
	Issuers, Carriers int
	// OutboxLease is the merchant nodes' -outbox-lease when there are
	// several; 0: 10 s.
	OutboxLease time.Duration
	Logf        func(format string, args ...any)
}

func (cfg *Config) defaults() {
	cfg.K = cmp.Or(cfg.K, 64)
	cfg.Cardholders = cmp.Or(cfg.Cardholders, 8)
	cfg.Limit = cmp.Or(cfg.Limit, 1_000_000_000)
	cfg.RelayPoll = cmp.Or(cfg.RelayPoll, 100*time.Millisecond)
	cfg.Start = cmp.Or(cfg.Start, 30*time.Second)
	cfg.Merchants = max(cfg.Merchants, 1)
	cfg.Issuers = max(cfg.Issuers, 1)
	cfg.Carriers = max(cfg.Carriers, 1)
	cfg.OutboxLease = cmp.Or(cfg.OutboxLease, 10*time.Second)
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
}

// Cardholder is one simulated buyer: identity, key, card and address token.
type Cardholder struct {
	Index  int
	ID     string // cardholder:cNNN@stress.example
	Key    *keygen.Cache
	Card   string // card number enrolled to ID
	Expiry string // YYYY-MM
	Token  string // the address registered in the vault

	party *keygen.PartyKey // for a new cardholder's fresh Key after registering
}

// Cluster is a running deployment.
type Cluster struct {
	cfg         Config
	dir, bin    string
	env         []string
	daemons     map[string]*daemon
	names       []string // the daemons in start order: vault, issuer, carrier and merchant nodes
	proxies     map[string]*LossyProxy
	balancers   map[string]*Balancer // by daemon: in front of its nodes when there are several
	cardholders []*Cardholder
	fresh       []*Cardholder // the new-cardholder pool, each handed out once
	nextFresh   atomic.Int64
	cliMu       sync.Mutex // serialises appends to cli.log
}

// daemon is one server process, restartable on its fixed address.
type daemon struct {
	name, bin, addr string
	args            []string // without -listen and -addr-file
	logPath         string
	addrFile        string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has been waited for
	starting bool          // launched, not yet listening
	up       bool          // listening, and not killed or stopped since
	starts   int
	lastExit string
}

// Start builds (or takes) the binaries, creates a key center, issues keys,
// enrolls cards, starts the four daemons and registers every cardholder's
// address in the vault. On error, whatever was started is killed.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	cfg.defaults()
	if cfg.Dir == "" {
		return nil, errors.New("cluster: Config.Dir is required")
	}
	if max(cfg.Merchants, cfg.Issuers, cfg.Carriers) > 1 && (cfg.Postgres == nil || cfg.LoseAnswers > 0) {
		return nil, errors.New("cluster: several nodes of a party share its PostgreSQL database (Config.Postgres), without lossy proxies")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	c = &Cluster{cfg: cfg, dir: dir, daemons: map[string]*daemon{}, balancers: map[string]*Balancer{}}
	// The deferred Close gets this cluster as an argument: a "return nil,
	// err" has set c to nil by the time it runs.
	defer func(started *Cluster) {
		if err != nil {
			started.Close()
			c = nil
		}
	}(c)
	for _, d := range Daemons {
		c.names = append(c.names, Nodes(d, cfg.nodes(d))...)
	}
	for _, d := range append([]string{"keys"}, c.names...) {
		if err := os.MkdirAll(c.Path(d), 0o700); err != nil {
			return nil, err
		}
	}
	c.bin = cfg.BinDir
	if c.bin == "" {
		c.bin = c.Path("bin")
		src := cfg.SourceDir
		if src == "" {
			if src, err = ModuleRoot(); err != nil {
				return nil, err
			}
		}
		cfg.Logf("cluster: building the binaries (race=%v)", cfg.Race)
		if err := Build(ctx, src, c.bin, cfg.Race); err != nil {
			return nil, err
		}
	}
	if c.bin, err = filepath.Abs(c.bin); err != nil {
		return nil, err
	}
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(c.bin, b)); err != nil {
			return nil, fmt.Errorf("cluster: binary %s: %w", b, err)
		}
	}
	var pass [16]byte
	rand.Read(pass[:])
	c.env = append(os.Environ(), keycenter.PassphraseEnv+"=stress-"+hex.EncodeToString(pass[:]))
	if testKDF(filepath.Join(c.bin, "keygen")) {
		c.env = append(c.env, keycenter.KDFEnv+"=fast")
	}
	var officers []string
	for _, o := range Officers {
		officers = append(officers, o+"=stress-"+o+"-"+hex.EncodeToString(pass[:]))
	}
	c.env = append(c.env, keycenter.OfficerPassphrasesEnv+"="+strings.Join(officers, "\n"))
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		// A race-built binary otherwise sleeps a second before it exits.
		c.env = append(c.env, strings.TrimSpace("GORACE="+g+" atexit_sleep_ms=0"))
	}

	if err := c.keys(ctx); err != nil {
		return nil, err
	}
	if err := c.enroll(ctx); err != nil {
		return nil, err
	}
	if err := c.startDaemons(ctx); err != nil {
		return nil, err
	}
	if err := c.registerAddresses(ctx); err != nil {
		return nil, err
	}
	if err := c.forgetFresh(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// forgetFresh undoes what registering the new cardholders' addresses
// cached: each gets a key cache of its own again, and the vault, which
// derived a pairwise key with each, restarts with empty caches.
func (c *Cluster) forgetFresh(ctx context.Context) error {
	if len(c.fresh) == 0 {
		return nil
	}
	for _, ch := range c.fresh {
		ch.Key = suite.NewKeys(ch.party, 16)
	}
	if err := c.Stop(Vault); err != nil {
		return err
	}
	return c.Restart(ctx, Vault)
}

// NewCardholder hands out the next cardholder of the new pool
// (Config.NewCardholders), each once; false when the pool is used up.
func (c *Cluster) NewCardholder() (*Cardholder, bool) {
	i := c.nextFresh.Add(1) - 1
	if i >= int64(len(c.fresh)) {
		return nil, false
	}
	return c.fresh[i], true
}

// NewCardholders counts the new-cardholder pool, used or not.
func (c *Cluster) NewCardholders() int { return len(c.fresh) }

// Officers hold an OS2 cluster's master, two of three needed to issue.
var Officers = []string{"ada", "ben", "cy"}

// Epochal reports whether the cluster's suite keys parties per epoch
// (OS2): receiving parties then run on keystores (PartyKey).
func (c *Cluster) Epochal() bool {
	s, err := suite.ByName(cmp.Or(c.cfg.Suite, suite.Default().Name()))
	return err == nil && s.EncapSize() > 0
}

// keys initialises the key center and issues every party's key; under an
// epoch suite each receiving party also makes its KEM pair and gets it
// signed into the directory (keys new-epoch, directory sign, keys entry).
func (c *Cluster) keys(ctx context.Context) error {
	c.cfg.Logf("cluster: key center k=%d, %d cardholders", c.cfg.K, c.cfg.Cardholders)
	args := []string{"init", "-dir", c.Path("center"), "-k", fmt.Sprint(c.cfg.K)}
	if c.cfg.Suite != "" {
		args = append(args, "-suite", c.cfg.Suite)
	}
	if c.Epochal() {
		args = append(args, "-officers", strings.Join(Officers, ","), "-threshold", "2")
	}
	if _, err := c.Run(ctx, "", "keygen", args...); err != nil {
		return err
	}
	ids := []string{MerchantID, IssuerID, CarrierID, VaultID}
	expiry := time.Now().UTC().AddDate(4, 0, 0).Format("2006-01")
	for i := range c.cfg.Cardholders + c.cfg.NewCardholders {
		ch := &Cardholder{Index: i, ID: fmt.Sprintf("cardholder:c%03d@stress.example", i), Card: CardNumber(i), Expiry: expiry}
		if i < c.cfg.Cardholders {
			c.cardholders = append(c.cardholders, ch)
		} else {
			c.fresh = append(c.fresh, ch)
		}
		ids = append(ids, ch.ID)
	}
	if err := os.WriteFile(c.Path("identities.txt"), []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	issue := []string{"issue", "-dir", c.Path("center"), "-ids", c.Path("identities.txt"), "-out-dir", c.Path("keys")}
	if c.Epochal() {
		issue = append(issue, "-officers", strings.Join(Officers[:2], ","))
	}
	if _, err := c.Run(ctx, "", "keygen", issue...); err != nil {
		return err
	}
	if c.Epochal() {
		if err := c.directory(ctx); err != nil {
			return err
		}
	}
	return parallel(ctx, runtime.NumCPU(), c.all(), func(ch *Cardholder) error {
		k, err := keygen.LoadPartyKey(c.KeyFile(ch.ID))
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		ch.party, ch.Key = k, suite.NewKeys(k, 16)
		return nil
	})
}

// all is every cardholder, the new-cardholder pool last.
func (c *Cluster) all() []*Cardholder { return append(slices.Clone(c.cardholders), c.fresh...) }

// KeyFile is the path of id's key file.
func (c *Cluster) KeyFile(id string) string { return c.Path("keys", keygen.KeyFileName(id)) }

// PartyKey is what a receiving party's -key names: its keystore under an
// epoch suite, its key file otherwise.
func (c *Cluster) PartyKey(id string) string {
	if c.Epochal() {
		return c.Path("keystores", strings.Replace(id, ":", ".", 1))
	}
	return c.KeyFile(id)
}

// directory gives each receiving party its keystore: its KEM pair of the
// epoch, signed by the officers into the directory.
func (c *Cluster) directory(ctx context.Context) error {
	bins := map[string][]string{MerchantID: {"merchant"}, IssuerID: {"issuer"}, CarrierID: {"carrier"}, VaultID: {"merchant", "vault"}}
	for _, id := range []string{MerchantID, IssuerID, CarrierID, VaultID} {
		bin, store := bins[id], c.PartyKey(id)
		req, err := c.Run(ctx, "", bin[0], append(bin[1:], "keys", "new-epoch", "-keys", store, "-key", c.KeyFile(id))...)
		if err != nil {
			return err
		}
		entry := filepath.Join(store, "entry.json")
		if _, err := c.Run(ctx, req, "keygen", "directory", "sign", "-dir", c.Path("center"), "-officers", strings.Join(Officers[1:], ","),
			"-request", "-", "-out", entry); err != nil {
			return err
		}
		if _, err := c.Run(ctx, "", bin[0], append(bin[1:], "keys", "entry", "-keys", store, "-entry", entry)...); err != nil {
			return err
		}
	}
	return nil
}

// enroll creates the issuer's card key and enrolls one card per cardholder
// with 'issuer card add', the number on stdin, before the issuer serves.
func (c *Cluster) enroll(ctx context.Context) error {
	if _, err := c.Run(ctx, "", "issuer", "init", "-card-key", c.Path("issuer", "card.key")); err != nil {
		return err
	}
	add := func(ch *Cardholder) error {
		_, err := c.Run(ctx, ch.Card+"\n", "issuer", "card", "add", "-db", c.DSN(Issuer),
			"-card-key", c.Path("issuer", "card.key"), "-cardholder", ch.ID, "-expiry", ch.Expiry,
			"-limit", fmt.Sprint(c.cfg.Limit), "-currency", "EUR", "-number-file", "-")
		return err
	}
	if err := add(c.cardholders[0]); err != nil { // creates the database alone
		return err
	}
	if err := parallel(ctx, runtime.NumCPU()+1, c.cardholders[1:], add); err != nil {
		return err
	}
	return c.enrollBatch(ctx, c.fresh)
}

// enrollBatch enrolls the new-cardholder pool through the issuer's store in
// this process, as 'issuer card add' does, without a process per card: a
// pool of hundreds would otherwise cost most of the setup.
func (c *Cluster) enrollBatch(ctx context.Context, chs []*Cardholder) error {
	if len(chs) == 0 {
		return nil
	}
	t0 := time.Now()
	key, err := issuerstore.LoadCardKey(c.Path("issuer", "card.key"))
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer key.Destroy()
	st, err := issuer.OpenStore(ctx, c.DSN(Issuer), issuerstore.Options{CardKey: key, MustExist: true})
	if err != nil {
		return fmt.Errorf("cluster: issuer store: %w", err)
	}
	defer st.Close()
	for _, ch := range chs {
		if _, err := st.AddCard(ctx, issuerstore.NewCard{Number: ch.Card, Cardholder: ch.ID, Expiry: ch.Expiry,
			Currency: "EUR", Limit: c.cfg.Limit}); err != nil {
			return fmt.Errorf("cluster: enrolling %s: %w", ch.ID, err)
		}
	}
	c.cfg.Logf("cluster: %d new cardholders enrolled in %s", len(chs), time.Since(t0).Round(time.Millisecond))
	return nil
}

// parallel runs f over items with at most n at a time; the first error wins.
func parallel[T any](ctx context.Context, n int, items []T, f func(T) error) error {
	sem := make(chan struct{}, n)
	errc := make(chan error, len(items))
	var wg sync.WaitGroup
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(it); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func (c *Cluster) startDaemons(ctx context.Context) error {
	ports, err := PickPorts(len(c.names))
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for i, name := range c.names {
		addr[name] = fmt.Sprintf("127.0.0.1:%d", ports[i])
	}
	// A party of several nodes is reached through its balancer.
	for _, kind := range Daemons {
		nodes := c.NodesOf(kind)
		if len(nodes) < 2 {
			continue
		}
		var urls []string
		for _, n := range nodes {
			urls = append(urls, "http://"+addr[n])
		}
		if c.balancers[kind], err = NewBalancer("127.0.0.1:0", urls); err != nil {
			return err
		}
	}
	url := func(name string) string {
		if b := c.balancers[name]; b != nil {
			return b.URL()
		}
		return "http://" + addr[name]
	}
	if c.cfg.LoseAnswers > 0 {
		c.proxies = map[string]*LossyProxy{}
		for i, name := range Daemons {
			p, err := NewLossyProxy(name, addr[name], c.cfg.LoseAnswers, c.cfg.LoseSeed+uint64(i))
			if err != nil {
				return err
			}
			c.proxies[name] = p
		}
		url = func(name string) string { return c.proxies[name].URL() }
	}
	if _, err := c.Run(ctx, "", "merchant", "vault", "init", "-data-key", c.Path("vault", "data.key")); err != nil {
		return err
	}
	catalog := map[string]any{"currency": "EUR"}
	var products []map[string]any
	for _, it := range append(CatalogItems, c.DeclineItem()) {
		products = append(products, map[string]any{"sku": it.SKU, "name": it.Name, "unit_price": it.Price})
	}
	catalog["products"] = products
	raw, _ := json.Marshal(catalog)
	if err := os.WriteFile(c.Path("merchant", "catalog.json"), raw, 0o600); err != nil {
		return err
	}
	args := map[string][]string{
		Vault:  append([]string{"vault", "serve", "-key", c.PartyKey(VaultID), "-data-key", c.Path("vault", "data.key")}, c.vaultStoreFlags()...),
		Issuer: {"serve", "-key", c.PartyKey(IssuerID), "-db", c.DSN(Issuer), "-card-key", c.Path("issuer", "card.key")},
		Carrier: {"serve", "-key", c.PartyKey(CarrierID), "-db", c.DSN(Carrier),
			"-vault-url", url(Vault), "-vault", VaultID, "-merchant", MerchantID + "=" + url(Merchant)},
		Merchant: {"serve", "-key", c.PartyKey(MerchantID), "-db", c.DSN(Merchant),
			"-catalog", c.Path("merchant", "catalog.json"), "-issuer", IssuerID + "=" + url(Issuer),
			"-carrier", CarrierID + "=" + url(Carrier), "-vault", VaultID + "=" + url(Vault),
			"-relay-poll", c.cfg.RelayPoll.String()},
	}
	if c.balancers[Merchant] != nil {
		// The carrier posts tracking events to whichever node is up, and a
		// killed node's relay jobs resume on another within the lease.
		args[Merchant] = append(args[Merchant], "-public-url", c.balancers[Merchant].URL(), "-outbox-lease", c.cfg.OutboxLease.String())
	}
	bins := map[string]string{Vault: "merchant", Issuer: "issuer", Carrier: "carrier", Merchant: "merchant"}
	for _, name := range c.names {
		kind := KindOf(name)
		d := &daemon{name: name, bin: filepath.Join(c.bin, bins[kind]), addr: addr[name], args: append(slices.Clone(args[kind]), c.cfg.DaemonArgs[kind]...),
			logPath: c.Path(name, name+".log"), addrFile: c.Path(name, "addr")}
		c.daemons[name] = d
		if err := c.launch(ctx, d); err != nil {
			return err
		}
		c.cfg.Logf("cluster: %-8s http://%s (pid %d)", name, d.addr, d.cmd.Process.Pid)
	}
	return nil
}

// DeclineItem is the product priced above every card's limit.
func (c *Cluster) DeclineItem() CatalogItem {
	it := DeclineItem
	it.Price = c.cfg.Limit + 1
	return it
}

// launch starts d on its address and waits, without holding d.mu, until it
// has written its address file; only then is it up.
func (c *Cluster) launch(ctx context.Context, d *daemon) error {
	d.mu.Lock()
	if d.up || d.starting {
		d.mu.Unlock()
		return fmt.Errorf("cluster: %s is already running", d.name)
	}
	os.Remove(d.addrFile)
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	cmd := exec.Command(d.bin, append(append([]string{}, d.args...), "-listen", d.addr, "-addr-file", d.addrFile)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = c.env
	if IsMerchantNode(d.name) && c.cfg.ClockFile != "" {
		cmd.Env = append(slices.Clone(c.env), merchant.ClockEnv+"="+c.cfg.ClockFile)
	}
	cmd.Dir = filepath.Dir(d.logPath)
	cmd.SysProcAttr = procAttr()
	err = cmd.Start()
	logf.Close()
	if err != nil {
		d.mu.Unlock()
		return fmt.Errorf("cluster: start %s: %w", d.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.cmd, d.exited, d.starting = cmd, exited, true
	d.starts++
	d.mu.Unlock()

	err = c.awaitListening(ctx, d, cmd, exited)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.starting = false
	if err != nil {
		cmd.Process.Kill()
		<-exited
		d.lastExit = cmd.ProcessState.String()
		return err
	}
	d.up = true
	return nil
}

func (c *Cluster) awaitListening(ctx context.Context, d *daemon, cmd *exec.Cmd, exited chan struct{}) error {
	deadline := time.NewTimer(c.cfg.Start)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(d.addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("cluster: %s exited at start (%s):\n%s", d.name, cmd.ProcessState, c.LogTail(d.name, 20))
		case <-deadline.C:
			return fmt.Errorf("cluster: %s did not listen within %s:\n%s", d.name, c.cfg.Start, c.LogTail(d.name, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (c *Cluster) daemon(name string) (*daemon, error) {
	d := c.daemons[name]
	if d == nil {
		return nil, fmt.Errorf("cluster: no daemon %q", name)
	}
	return d, nil
}

// lockRunning returns the running daemon called name with its lock held.
func (c *Cluster) lockRunning(name string) (*daemon, error) {
	d, err := c.daemon(name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if !d.up {
		d.mu.Unlock()
		return nil, fmt.Errorf("cluster: %s is not running", name)
	}
	return d, nil
}

// Kill sends SIGKILL to a running daemon and waits for it to die.
func (c *Cluster) Kill(name string) error {
	d, err := c.lockRunning(name)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("cluster: %s (pid %d) still alive 10 s after SIGKILL", name, d.cmd.Process.Pid)
	}
	d.up = false
	d.lastExit = d.cmd.ProcessState.String()
	return nil
}

// Restart starts a daemon that was killed or stopped again, on its address.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	d, err := c.daemon(name)
	if err != nil {
		return err
	}
	return c.launch(ctx, d)
}

// Stop sends SIGTERM and expects a graceful exit 0 within 30 s, with no
// data race reported in the daemon's log.
func (c *Cluster) Stop(name string) error {
	d, err := c.lockRunning(name)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	t0 := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		c.cfg.Logf("cluster: %s stopped in %s (%s)", name, time.Since(t0).Round(time.Millisecond), d.cmd.ProcessState)
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		d.up = false
		return fmt.Errorf("cluster: %s still running 30 s after SIGTERM (killed)", name)
	}
	d.up = false
	d.lastExit = d.cmd.ProcessState.String()
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("cluster: %s exited %s after SIGTERM:\n%s", name, d.lastExit, c.LogTail(name, 20))
	}
	return c.raceCheck(name)
}

func (c *Cluster) raceCheck(name string) error {
	b, _ := os.ReadFile(c.Path(name, name+".log"))
	if bytes.Contains(b, []byte("WARNING: DATA RACE")) {
		return fmt.Errorf("cluster: %s log reports a data race (%s)", name, c.Path(name, name+".log"))
	}
	return nil
}

// StopAll stops every running daemon, merchant first, and returns every
// failure to stop gracefully.
func (c *Cluster) StopAll() error {
	var errs []error
	for i := len(c.names) - 1; i >= 0; i-- {
		if c.Up(c.names[i]) {
			errs = append(errs, c.Stop(c.names[i]))
		}
	}
	return errors.Join(errs...)
}

// Close kills whatever is still running. Safe to call more than once.
func (c *Cluster) Close() {
	defer func() {
		for _, p := range c.proxies {
			p.Close()
		}
		for _, b := range c.balancers {
			b.Close()
		}
	}()
	for _, d := range c.daemons {
		d.mu.Lock()
		if d.up || d.starting {
			d.cmd.Process.Kill() // a launch in progress sees it exit
		}
		if d.up {
			<-d.exited
			d.up = false
		}
		d.mu.Unlock()
	}
}

// Up reports whether a daemon is running.
func (c *Cluster) Up(name string) bool {
	d, err := c.daemon(name)
	if err != nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.up
}

// EnsureUp restarts every daemon that is down.
func (c *Cluster) EnsureUp(ctx context.Context) error {
	for _, name := range c.names {
		if !c.Up(name) {
			if err := c.Restart(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// PID is a running daemon's process id (0 when down).
func (c *Cluster) PID(name string) int {
	d, err := c.daemon(name)
	if err != nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.up {
		return 0
	}
	return d.cmd.Process.Pid
}

// Starts is how many times a daemon was started.
func (c *Cluster) Starts(name string) int {
	d, err := c.daemon(name)
	if err != nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starts
}

// RSS is a running daemon's resident set size in bytes (VmRSS).
func (c *Cluster) RSS(name string) (int64, error) {
	pid := c.PID(name)
	if pid == 0 {
		return 0, fmt.Errorf("cluster: %s is not running", name)
	}
	return ProcessRSS(pid)
}

// PeerURL is where the parties and the driver reach a daemon: through its
// LossyProxy when Config.LoseAnswers is set, else URL.
func (c *Cluster) PeerURL(name string) string {
	if p := c.proxies[name]; p != nil {
		return p.URL()
	}
	if b := c.balancers[name]; b != nil {
		return b.URL()
	}
	return c.URL(name)
}

// Names lists the cluster's daemons in start order: the vault, then the
// issuer, carrier and merchant nodes (NodesOf).
func (c *Cluster) Names() []string { return slices.Clone(c.names) }

// Balancer is the load balancer in front of the merchant nodes, nil with one.
func (c *Cluster) Balancer() *Balancer { return c.balancers[Merchant] }

// BalancerOf is the load balancer in front of a daemon's nodes (Issuer,
// Carrier or Merchant), nil with one.
func (c *Cluster) BalancerOf(daemon string) *Balancer { return c.balancers[daemon] }

// Proxies returns the lossy proxies in Daemons order (none without LoseAnswers).
func (c *Cluster) Proxies() []*LossyProxy {
	var out []*LossyProxy
	for _, name := range Daemons {
		if p := c.proxies[name]; p != nil {
			out = append(out, p)
		}
	}
	return out
}

// URL is a daemon's base URL (fixed for the cluster's life).
func (c *Cluster) URL(name string) string {
	if d := c.daemons[name]; d != nil {
		return "http://" + d.addr
	}
	return ""
}

// Dir is the work directory; Path joins parts under it.
func (c *Cluster) Dir() string { return c.dir }
func (c *Cluster) Path(parts ...string) string {
	return filepath.Join(append([]string{c.dir}, parts...)...)
}
func (c *Cluster) BinDir() string               { return c.bin }
func (c *Cluster) Limit() int64                 { return c.cfg.Limit }
func (c *Cluster) Cardholders() []*Cardholder   { return c.cardholders }
func (c *Cluster) LogPath(name string) string   { return c.Path(name, name+".log") }
func (c *Cluster) Logf(format string, a ...any) { c.cfg.Logf(format, a...) }

// LogTail returns the last n lines of a daemon's log.
func (c *Cluster) LogTail(name string, n int) string {
	b, _ := os.ReadFile(c.LogPath(name))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Run runs one of the binaries to completion (bounded by ctx and two
// minutes), stdin given, and returns its stdout. Both streams are appended to
// cli.log; a non-zero exit is an error carrying stderr.
func (c *Cluster) Run(ctx context.Context, stdin, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, bin), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = c.env
	cmd.Dir = c.dir
	err := cmd.Run()
	c.cliMu.Lock()
	if f, ferr := os.OpenFile(c.Path("cli.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); ferr == nil {
		fmt.Fprintf(f, "$ %s %s\n", bin, strings.Join(args, " "))
		f.Write(errb.Bytes())
		f.Close()
	}
	c.cliMu.Unlock()
	if err != nil {
		return out.String(), fmt.Errorf("cluster: %s %s: %w\n%s", bin, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// registerAddresses registers one address per cardholder in the vault with
// the vault's Go client, so orders ship to tokens and take the grant path.
func (c *Cluster) registerAddresses(ctx context.Context) error {
	hc := &http.Client{Timeout: 30 * time.Second}
	return parallel(ctx, 4, c.all(), func(ch *Cardholder) error {
		vc, err := vaultapi.NewClient(ch.Key, c.URL(Vault), VaultID, hc)
		if err != nil {
			return err
		}
		a := Address(ch.Index)
		norm, err := vaultapi.NormalizeAddress(a)
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		res, err := vc.Register(rctx, vaultapi.TypeAddress, "home", false, norm)
		if err != nil {
			return fmt.Errorf("cluster: registering %s's address: %w", ch.ID, err)
		}
		ch.Token = res.Token
		return nil
	})
}

// ModuleRoot finds the orderseal module root from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module orderseal")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cluster: no orderseal go.mod above the working directory; set SourceDir or BinDir")
		}
		dir = parent
	}
}

// testKDF reports whether the keygen binary at path is a test build that
// honours ORDERSEAL_CENTER_KDF=fast (built with -tags orderseal_testkdf, as
// Build does). A production binary (make build's bin/, which make chaos and
// make soak use) refuses the variable, so its key center seals with the
// production argon2id cost: slower to set up, the same cluster.
func testKDF(path string) bool {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), "orderseal_testkdf") {
			return true
		}
	}
	return false
}

// Build builds the five binaries from the module at src into out.
func Build(ctx context.Context, src, out string, race bool) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("cluster: build needs the go command on PATH: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// The test tag lets keygen honour ORDERSEAL_CENTER_KDF=fast (c.env sets it).
	// The clock tag lets the merchant run on Config.ClockFile's clock.
	args := []string{"build", "-tags", "orderseal_testkdf orderseal_testclock", "-o", out + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	for _, b := range Binaries {
		args = append(args, "./cmd/"+b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: go build: %w\n%s", err, b)
	}
	return nil
}
