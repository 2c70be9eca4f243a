package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"orderseal/internal/sqlitex"
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
	ErrAuditBroken     = errors.New("vault: audit chain broken")

	ErrBadToken    = errors.New("vault: malformed token")
	ErrTokenType   = errors.New("vault: unknown token type")
	ErrInvalid     = errors.New("vault: invalid input")
	ErrBadDataKey  = errors.New("vault: data key file is not 32 bytes of base64url")
	ErrWrongKey    = errors.New("vault: data file was sealed under another data key")
	ErrCorrupt     = errors.New("vault: data record fails authentication")
	ErrUnavailable = errors.New("vault: data store unavailable")
)

// Input limits: Register refuses anything larger.
const (
	MaxOwnerLen = 256
	MaxLabelLen = 128
	MaxValueLen = 16 << 10
)

// Config says where the vault's files are. IndexPath, DataPath and DataKey are required.
type Config struct {
	IndexPath, DataPath string
	BackupPath          string           // optional backup data store, written through
	PendingPath         string           // "": IndexPath + ".pending"
	DataKey             *DataKey         // never stored in any database
	Now                 func() time.Time // nil: time.Now
	Logger              *slog.Logger     // nil: discard; never given PII or keys
}

// Store is the vault's persistence. It is safe for concurrent use.
type Store struct {
	index   *sql.DB
	pending *sql.DB
	primary *dataStore
	backup  *dataStore // nil without Config.BackupPath
	keys    *keys
	now     func() time.Time
	log     *slog.Logger

	// Register hands its registration to the committer (register.go)
	// over registrations; unbuffered, so a completed send means taken.
	registrations chan *registration
	closing       chan struct{} // closed by Close
	stopped       chan struct{} // closed when the committer has returned
	closeOnce     sync.Once

	regMu   sync.Mutex // a batch's dedupe lookup and inserts happen as one step; rotation holds it too
	flushMu sync.Mutex
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

var indexMigrations = []string{
	`CREATE TABLE entries (
		token       TEXT PRIMARY KEY,
		owner       TEXT NOT NULL,
		type        TEXT NOT NULL,
		label       TEXT NOT NULL,
		epoch       INTEGER NOT NULL,
		created     INTEGER NOT NULL, -- unix nanoseconds
		expires     INTEGER NOT NULL, -- unix nanoseconds; 0: never
		shareable   INTEGER NOT NULL CHECK (shareable IN (0, 1)),
		replaced_by TEXT NOT NULL DEFAULT ''
	) STRICT;
	CREATE INDEX entries_owner ON entries(owner, created);
	CREATE INDEX entries_current ON entries(created) WHERE replaced_by = '';

	CREATE TABLE grants (
		id       TEXT PRIMARY KEY,
		token    TEXT NOT NULL REFERENCES entries(token),
		merchant TEXT NOT NULL,
		carrier  TEXT NOT NULL,
		order_id TEXT NOT NULL,
		invoice  TEXT NOT NULL,
		expires  INTEGER NOT NULL,
		max_uses INTEGER NOT NULL CHECK (max_uses > 0),
		uses     INTEGER NOT NULL DEFAULT 0,
		created  INTEGER NOT NULL,
		UNIQUE (token, carrier, order_id)
	) STRICT;

	CREATE TABLE audit (
		seq      INTEGER PRIMARY KEY,
		time     INTEGER NOT NULL, -- unix nanoseconds
		kind     TEXT NOT NULL,
		actor    TEXT NOT NULL,
		token    TEXT NOT NULL,
		order_id TEXT NOT NULL,
		outcome  TEXT NOT NULL,
		prev     BLOB NOT NULL,
		hash     BLOB NOT NULL
	) STRICT;`,
}

// Open opens (creating when absent) the index, pending and data files and
// runs their migrations. A data file that cannot be opened is an outage, not
// an error: the store starts with writes going to the pending table. A data
// file sealed under another key, or with a newer schema, is an error.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.IndexPath == "" || cfg.DataPath == "" {
		return nil, fmt.Errorf("%w: IndexPath and DataPath are required", ErrInvalid)
	}
	if cfg.PendingPath == "" {
		cfg.PendingPath = cfg.IndexPath + ".pending"
	}
	seen := map[string]string{}
	for name, p := range map[string]string{"index": cfg.IndexPath, "data": cfg.DataPath, "backup": cfg.BackupPath, "pending": cfg.PendingPath} {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[abs]; dup {
			return nil, fmt.Errorf("%w: %s and %s are the same file", ErrInvalid, name, other)
		}
		seen[abs] = name
	}
	ks, err := deriveKeys(cfg.DataKey)
	if err != nil {
		return nil, err
	}
	s := &Store{keys: ks, now: cfg.Now, log: cfg.Logger,
		registrations: make(chan *registration), closing: make(chan struct{}), stopped: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	go s.commitLoop()
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	if s.index, err = sqlitex.Open(cfg.IndexPath, sqlitex.Immediate()); err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	if err := sqlitex.Migrate(ctx, s.index, indexMigrations); err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	if s.pending, err = sqlitex.Open(cfg.PendingPath, sqlitex.Immediate()); err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	if err := sqlitex.Migrate(ctx, s.pending, pendingMigrations); err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	if err := checkKey(ctx, s.pending, ks.check); err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}

	s.primary = &dataStore{name: "primary", path: cfg.DataPath, check: ks.check}
	if cfg.BackupPath != "" {
		s.backup = &dataStore{name: "backup", path: cfg.BackupPath, check: ks.check}
	}
	for _, d := range []*dataStore{s.primary, s.backup} {
		if d == nil {
			continue
		}
		db, st, err := d.open(ctx, true)
		switch {
		case err == nil:
			d.db, d.file = db, st
		case errors.Is(err, ErrWrongKey) || errors.Is(err, sqlitex.ErrSchemaTooNew):
			return nil, fmt.Errorf("vault %s data store: %w", d.name, err)
		default:
			s.log.Warn("vault data store unavailable at start; writes go to the pending table",
				"store", d.name, "err", err)
		}
	}
	ok = true
	return s, nil
}

// Close lets the batch of registrations being committed finish, then
// closes every file. Operations after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.stopped
	var errs []error
	for _, d := range []*dataStore{s.primary, s.backup} {
		if d != nil {
			errs = append(errs, d.close())
		}
	}
	for _, db := range []*sql.DB{s.pending, s.index} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
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
func (s *Store) writeRecord(ctx context.Context, rs ...record) error {
	err := s.primary.put(ctx, rs...)
	if err == nil && s.backup != nil {
		err = s.backup.put(ctx, rs...)
	}
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if perr := putRecord(ctx, s.pending, "pending", rs...); perr != nil {
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
	s.pending.ExecContext(ctx, `DELETE FROM pending WHERE token IN (`+sqlitex.Placeholders(len(tokens))+`)`, sqlitex.Args(tokens)...)
	s.primary.delete(ctx, tokens)
	if s.backup != nil {
		s.backup.delete(ctx, tokens)
	}
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// insertEntries inserts es in one statement.
func insertEntries(ctx context.Context, db dbtx, es ...Entry) error {
	args := make([]any, 0, 9*len(es))
	for _, e := range es {
		args = append(args, e.Token, e.Owner, string(e.Type), e.Label, e.Epoch, nanos(e.Created), nanos(e.Expires), e.Shareable, e.ReplacedBy)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO entries (`+entryColumns+`) VALUES `+valueRows(len(es), 9), args...)
	return err
}

const entryColumns = `token, owner, type, label, epoch, created, expires, shareable, replaced_by`

func scanEntry(sc interface{ Scan(...any) error }) (Entry, error) {
	var e Entry
	var typ string
	var created, expires int64
	if err := sc.Scan(&e.Token, &e.Owner, &typ, &e.Label, &e.Epoch, &created, &expires, &e.Shareable, &e.ReplacedBy); err != nil {
		return Entry{}, err
	}
	e.Type, e.Created, e.Expires = TokenType(typ), fromNanos(created), fromNanos(expires)
	return e, nil
}

// List returns owner's entries that have not expired, oldest first,
// including tokens replaced by rotation that are still in their grace
// period. It reads the index only: no PII.
func (s *Store) List(ctx context.Context, owner string) ([]Entry, error) {
	rows, err := s.index.QueryContext(ctx, `SELECT `+entryColumns+` FROM entries
		WHERE owner = ? AND (expires = 0 OR expires > ?) ORDER BY created, token`, owner, s.now().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("vault index: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Lookup returns token's index entry, expired or not (ErrNotFound when there
// is none). It reads the index only.
func (s *Store) Lookup(ctx context.Context, token string) (Entry, error) {
	if _, err := ParseTokenType(token); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	e, err := scanEntry(s.index.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE token = ?`, token))
	if errors.Is(err, sql.ErrNoRows) {
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
	if e.expiredAt(s.now()) {
		return nil, ErrExpired
	}
	_, pt, err := s.readRecord(ctx, token)
	return pt, err
}

// readRecord finds and opens token's sealed record.
func (s *Store) readRecord(ctx context.Context, token string) (record, []byte, error) {
	r, ok, err := getRecord(ctx, s.pending, "pending", token)
	if err != nil {
		return record{}, nil, fmt.Errorf("vault pending: %w", err)
	}
	if ok {
		if pt, err := s.keys.open(token, r.nonce, r.ct); err == nil {
			return r, pt, nil
		}
		s.log.Error("vault pending record fails authentication", "err", ErrCorrupt)
	}
	var errs []error
	for _, d := range []*dataStore{s.primary, s.backup} {
		if d == nil {
			continue
		}
		r, ok, err := d.get(ctx, token)
		switch {
		case err != nil:
		case !ok:
			err = fmt.Errorf("%s data store has no record: %w", d.name, ErrNotFound)
		default:
			pt, oerr := s.keys.open(token, r.nonce, r.ct)
			if oerr == nil {
				if d != s.primary {
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
				return record{}, nil, fmt.Errorf("vault reveal: %w (%w)", sentinel, errors.Join(errs...))
			}
		}
	}
	return record{}, nil, fmt.Errorf("vault reveal: %w", errors.Join(errs...))
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
	if err := s.pending.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending`).Scan(&st.Pending); err != nil {
		return st, fmt.Errorf("vault pending: %w", err)
	}
	_, err := s.primary.byHash(ctx, nil)
	st.PrimaryOK = err == nil
	if s.backup != nil {
		_, err := s.backup.byHash(ctx, nil)
		st.BackupOK = err == nil
	}
	return st, nil
}
