package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"orderseal/internal/signedhttp/nonce"
)

// Errors. Callers test with errors.Is.
var (
	ErrNotFound        = errors.New("vault: token not found")
	ErrExpired         = errors.New("vault: token expired")
	ErrNoGrant         = errors.New("vault: no grant for this token, carrier and order")
	ErrGrantExpired    = errors.New("vault: grant expired")
	ErrGrantUsedUp     = errors.New("vault: grant used up")
	ErrInvoiceMismatch = errors.New("vault: invoice does not match the grant")
	ErrGrantConflict   = errors.New("vault: a different grant exists for this token, carrier and order")
	ErrGrantPending    = errors.New("vault: grant pending the issuer's approval")
	ErrGrantRevoked    = errors.New("vault: grant revoked")
	ErrNotOwner        = errors.New("vault: the token belongs to another owner and is not shareable")
	ErrAuditBroken     = errors.New("vault: audit chain broken")

	ErrBadToken    = errors.New("vault: malformed token")
	ErrTokenType   = errors.New("vault: unknown token type")
	ErrInvalid     = errors.New("vault: invalid input")
	ErrBadDataKey  = errors.New("vault: data key file is not 32 bytes of base64url")
	ErrWrongKey    = errors.New("vault: data file was sealed under another data key")
	ErrCorrupt     = errors.New("vault: data record fails authentication")
	ErrUnavailable = errors.New("vault: data store unavailable")
	ErrClosed      = errors.New("vault: store is closed")
)

// Input limits: Register refuses anything larger.
const (
	MaxOwnerLen = 256
	MaxLabelLen = 128
	MaxValueLen = 16 << 10
)

// Options configure a Store. DataKey is required.
type Options struct {
	DataKey *DataKey         // never stored in any database
	Now     func() time.Time // nil: time.Now
	Logger  *slog.Logger     // nil: discard; never given PII or keys
	// Fold, when set, is the form of a value the dedupe hash is taken
	// over (the vault's: an address's address.FoldKey), so values that
	// differ only in case, width or Unicode form get one token per owner.
	// Register stores the value itself. nil: the value as it is.
	Fold    func(t TokenType, value []byte) []byte
	Observe Observer // the zero value hears nothing
}

// Observer hears what the store did, for the vault's metrics. It is told
// kinds, outcome classes and counts, never a token, owner or value.
type Observer struct {
	Audited     func(kind, outcome string) // an audited reveal, grant or registration committed; outcome "ok", "refused" or "failed"
	CommitBatch func(n int)                // one group commit took n registrations
	Flushed     func(n int)                // one flush moved n pending records
}

func (o Observer) audited(kind, outcome string) {
	if o.Audited != nil {
		class, _, _ := strings.Cut(outcome, ":")
		o.Audited(kind, class)
	}
}

func (o Observer) commitBatch(n int) {
	if o.CommitBatch != nil {
		o.CommitBatch(n)
	}
}

func (o Observer) flushed(n int) {
	if o.Flushed != nil {
		o.Flushed(n)
	}
}

// Store is the vault: its domain logic over the Backends. It is safe for
// concurrent use.
type Store struct {
	index   Index
	pending Pending
	primary Data
	backup  Data // nil without a backup
	keys    *keys
	now     func() time.Time
	log     *slog.Logger
	fold    func(TokenType, []byte) []byte
	obs     Observer

	// Register hands its registration to the committer (register.go)
	// over registrations; unbuffered, so a completed send means taken.
	registrations chan *registration
	audits        chan *auditing // Audit and AuditBatch to the committer, likewise
	closing       chan struct{}  // closed by Close
	stopped       chan struct{}  // closed when the committer has returned
	closeOnce     sync.Once
	closeErr      error

	regMu   sync.Mutex // a batch's dedupe lookup and inserts happen as one step; rotation holds it too
	flushMu sync.Mutex

	dataKey  *DataKey // for the audit checkpoints' MAC
	headMu   sync.Mutex
	head     committed  // the newest audit entry this process committed (updateIndex)
	anchorMu sync.Mutex // orders checkpoints
	anchored Checkpoint // the newest checkpoint written (or read at start)
	// anchoring: a goroutine is writing checkpoints; anchorWanted: the
	// head moved since it began (anchor).
	anchoring, anchorWanted atomic.Bool
	tampered                atomic.Bool
}

// Entry is one token in the index. It holds no PII.
type Entry struct {
	Token, Owner string
	Type         TokenType
	Label        string
	Epoch        int       // 1 when registered, +1 per rotation
	Created      time.Time // UTC
	Expires      time.Time // zero: never
	Shareable    bool
	ReplacedBy   string // set by rotation; the entry then expires after the grace period
}

func (e Entry) expiredAt(now time.Time) bool {
	return !e.Expires.IsZero() && !now.Before(e.Expires)
}

// New builds a Store over b (Index, Primary and Pending required) and
// starts its committer. The Store owns b from here: Close closes them, also
// when New fails.
func New(b Backends, opt Options) (*Store, error) {
	ks, err := deriveKeys(opt.DataKey)
	if err == nil && (b.Index == nil || b.Primary == nil || b.Pending == nil) {
		err = fmt.Errorf("%w: the index, primary data store and pending table are required", ErrInvalid)
	}
	if err != nil {
		closeAll(b)
		return nil, err
	}
	s := &Store{index: b.Index, pending: b.Pending, primary: b.Primary, backup: b.Backup,
		keys: ks, now: opt.Now, log: opt.Logger, dataKey: opt.DataKey, fold: opt.Fold, obs: opt.Observe,
		registrations: make(chan *registration), audits: make(chan *auditing), closing: make(chan struct{}), stopped: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.loadAnchor(context.Background()); err != nil {
		closeAll(b)
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

func closeAll(b Backends) error {
	var errs []error
	for _, c := range []interface{ Close() error }{b.Primary, b.Backup, b.Pending, b.Index} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Nonces is the replay memory of signed requests to the vault, kept in the
// index (Index.Nonces): it survives restarts and is shared by every vault
// process serving from the same index.
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return s.index.Nonces(quota) }

// Close lets the batch of registrations being committed finish, then
// closes every backend. Operations after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.stopped
		s.closeErr = closeAll(Backends{Index: s.index, Primary: s.primary, Backup: s.backup, Pending: s.pending})
	})
	return s.closeErr
}

func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// writeRecord writes rs to the primary, then the backup, one transaction
// each; if either fails, it writes them to the pending table in one
// transaction.
func (s *Store) writeRecord(ctx context.Context, rs ...Record) error {
	err := s.primary.Put(ctx, rs...)
	if err == nil && s.backup != nil {
		err = s.backup.Put(ctx, rs...)
	}
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if perr := s.pending.Put(ctx, rs...); perr != nil {
		return fmt.Errorf("vault: %w; and the pending table failed too: %w", err, perr)
	}
	s.log.Warn("vault records queued in the pending table", "records", len(rs), "err", err)
	return nil
}

// discardRecords removes the records of tokens after their index entries
// could not be written; what it misses is an orphan no index entry points
// to, for SweepOrphans.
func (s *Store) discardRecords(tokens []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.pending.Delete(ctx, tokens...)
	s.primary.Delete(ctx, tokens...)
	if s.backup != nil {
		s.backup.Delete(ctx, tokens...)
	}
}

// List returns owner's entries that have not expired, oldest first,
// including tokens replaced by rotation that are still in their grace
// period. It reads the index only: no PII.
func (s *Store) List(ctx context.Context, owner string) ([]Entry, error) {
	out, err := s.index.List(ctx, owner, s.now())
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return out, nil
}

// Lookup returns token's index entry, expired or not (ErrNotFound when there
// is none). It reads the index only.
func (s *Store) Lookup(ctx context.Context, token string) (Entry, error) {
	if _, err := ParseTokenType(token); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	e, err := s.index.Entry(ctx, token)
	if errors.Is(err, ErrNotFound) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("vault index: %w", err)
	}
	return e, nil
}

// Reveal returns the value token stands for: ErrNotFound for an unknown
// token, ErrExpired past its expiry (for a token replaced by rotation: past
// its grace period). It reads the pending table, then the primary, then the
// backup when the primary fails. Authorization is the caller's business.
func (s *Store) Reveal(ctx context.Context, token string) ([]byte, error) {
	e, err := s.Lookup(ctx, token)
	if err != nil {
		return nil, err
	}
	return s.RevealEntry(ctx, e)
}

// RevealEntry is Reveal for a caller holding the token's entry from Lookup.
func (s *Store) RevealEntry(ctx context.Context, e Entry) ([]byte, error) {
	if e.expiredAt(s.now()) {
		return nil, ErrExpired
	}
	return s.readValue(ctx, e.Token)
}

// readValue returns the value token stands for: its record's reference
// followed to the shared record, whose id must be the value's own (a
// reference moved to another shared record fails), or the value itself in
// a record written before values were shared.
func (s *Store) readValue(ctx context.Context, token string) ([]byte, error) {
	_, pt, err := s.readRecord(ctx, token)
	if err != nil {
		return nil, err
	}
	id, ok := ref(pt)
	if !ok {
		return pt, nil
	}
	t, err := ParseTokenType(token)
	if err != nil {
		return nil, err
	}
	_, v, err := s.readRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.keys.shareID(t, v) != id {
		clear(v)
		return nil, fmt.Errorf("vault reveal: %w: shared record of another value", ErrCorrupt)
	}
	return v, nil
}

// readRecord finds and opens token's sealed record.
func (s *Store) readRecord(ctx context.Context, token string) (Record, []byte, error) {
	r, ok, err := s.pending.Get(ctx, token)
	if err != nil {
		return Record{}, nil, fmt.Errorf("vault pending: %w", err)
	}
	if ok {
		if pt, err := s.keys.open(token, r.Nonce, r.Sealed); err == nil {
			return r, pt, nil
		}
		s.log.Error("vault pending record fails authentication", "err", ErrCorrupt)
	}
	var errs []error
	for _, d := range s.dataStores() {
		r, ok, err := d.Get(ctx, token)
		switch {
		case err != nil:
		case !ok:
			err = fmt.Errorf("%s data store has no record: %w", d.name, ErrNotFound)
		default:
			pt, oerr := s.keys.open(token, r.Nonce, r.Sealed)
			if oerr == nil {
				if d.name != "primary" {
					s.log.Warn("vault reveal served from the backup", "primary_err", errs[0])
				}
				return r, pt, nil
			}
			err = fmt.Errorf("%s data store: %w", d.name, oerr)
		}
		errs = append(errs, err)
	}
	// Say the most actionable thing: retry later, then tampering, then gone.
	for _, sentinel := range []error{ErrUnavailable, ErrCorrupt, ErrNotFound} {
		for _, e := range errs {
			if errors.Is(e, sentinel) {
				return Record{}, nil, fmt.Errorf("vault reveal: %w (%w)", sentinel, errors.Join(errs...))
			}
		}
	}
	return Record{}, nil, fmt.Errorf("vault reveal: %w", errors.Join(errs...))
}

// Status describes the data stores' health, for a health endpoint.
type Status struct {
	PrimaryOK bool
	BackupOK  bool // false also when there is no backup
	Pending   int  // records waiting for Flush
}

// Status probes the data stores and counts pending records.
func (s *Store) Status(ctx context.Context) (Status, error) {
	var st Status
	n, err := s.pending.Count(ctx)
	if err != nil {
		return st, fmt.Errorf("vault pending: %w", err)
	}
	st.Pending = n
	st.PrimaryOK = s.primary.Ping(ctx) == nil
	st.BackupOK = s.backup != nil && s.backup.Ping(ctx) == nil
	return st, nil
}

// Ping is the vault's readiness: the index and the pending table answer,
// and the primary or the backup data store does.
func (s *Store) Ping(ctx context.Context) error {
	if _, _, err := s.index.AuditHead(ctx); err != nil {
		return fmt.Errorf("vault index: %w", err)
	}
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	if !st.PrimaryOK && !st.BackupOK {
		return fmt.Errorf("vault data stores: %w", ErrUnavailable)
	}
	return nil
}

// namedData is a data store with its name, for messages.
type namedData struct {
	Data
	name string // "primary" or "backup"
}

// dataStores returns the primary, then the backup if there is one.
func (s *Store) dataStores() []namedData {
	ds := []namedData{{s.primary, "primary"}}
	if s.backup != nil {
		ds = append(ds, namedData{s.backup, "backup"})
	}
	return ds
}
