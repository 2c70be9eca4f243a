package center

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/keygen"
)

// The ledger (DESIGN.md §2.1): every issuance of an epoch suite's center,
// appended to ledger.jsonl in the center directory, one JSON object per
// line, hash-chained:
//
//	{"v":1,"seq":N,"time":RFC3339Nano UTC,"kind":K,"officers":[…],
//	 "identity":…,"epoch":…,"role":…,"key":hex,"prev":hex,"sig":b64}
//
// kind is "issue" (a party key), "directory" (a directory entry) or
// "checkpoint". officers are those who opened the master. For issue and
// directory lines, key is the SHA-256 of what was issued's public parts,
// never of a secret: SHA-256(lp16(labelLedgerKey) || lp16(params JSON) ||
// lp16(identity) || lp16(epoch)) for a key, SHA-256(lp16(labelLedgerEntry)
// || the entry's signed bytes) for an entry. prev is the SHA-256 of the
// previous line's bytes (without its newline); line 1's prev is
// SHA-256(lp16(labelLedgerGenesis) || system). A line is canonical: the
// bytes encoding/json writes for it, which the reader checks.
//
// Every command that appends ends with a checkpoint: its sig is the
// center's ML-DSA-65 signature of lp16(labelLedgerCheckpoint) || system ||
// be64(seq) || lp16(time) || lp16(officers joined by ",") || prev, so the
// chain up to it cannot be rewritten without T officers. init writes the
// first checkpoint. What a signature cannot show is a ledger cut back to
// an earlier checkpoint: compare the head 'keygen ledger verify' prints
// with one recorded elsewhere.
//
// The file is 0600: it holds no secret, but it lists every identity the
// center issued to (cardholders' addresses among them).

// LedgerFile is the ledger's name in the center directory.
const LedgerFile = "ledger.jsonl"

// Kinds of ledger line.
const (
	LedgerIssue      = "issue"
	LedgerDirectory  = "directory"
	LedgerCheckpoint = "checkpoint"
)

const (
	labelLedgerGenesis    = "orderseal-v2-ledger-genesis"
	labelLedgerCheckpoint = "orderseal-v2-ledger-checkpoint"
	labelLedgerKey        = "orderseal-v2-ledger-key"
	labelLedgerEntry      = "orderseal-v2-ledger-entry"
)

// maxLedgerLine bounds one line: a signature in base64 and room.
const maxLedgerLine = 8192

// ErrLedger is wrapped by every ledger failure.
var ErrLedger = errors.New("ledger")

// LedgerError is a ledger that fails to verify at one line.
type LedgerError struct {
	Line int // 1-based
	Err  error
}

func (e *LedgerError) Error() string   { return fmt.Sprintf("%s line %d: %s", LedgerFile, e.Line, e.Err) }
func (e *LedgerError) Unwrap() []error { return []error{ErrLedger, e.Err} }

type ledgerLine struct {
	V        int      `json:"v"`
	Seq      uint64   `json:"seq"`
	Time     string   `json:"time"`
	Kind     string   `json:"kind"`
	Officers []string `json:"officers"`
	Identity string   `json:"identity,omitempty"`
	Epoch    string   `json:"epoch,omitempty"`
	Role     string   `json:"role,omitempty"`
	Key      string   `json:"key,omitempty"`
	Prev     string   `json:"prev"`
	Sig      string   `json:"sig,omitempty"`
}

// parseLedgerLine reads one line (without its newline) strictly: its
// syntax, its canonical form and each kind's fields; not the chain.
func parseLedgerLine(b []byte) (*ledgerLine, time.Time, error) {
	var l ledgerLine
	if err := strictjson.Decode(b, &l, maxLedgerLine); err != nil {
		return nil, time.Time{}, err
	}
	if l.V != 1 {
		return nil, time.Time{}, fmt.Errorf("%w: v=%d", keygen.ErrVersion, l.V)
	}
	if again, err := json.Marshal(&l); err != nil || !bytes.Equal(again, b) {
		return nil, time.Time{}, errors.New("not in canonical form")
	}
	t, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil || t.UTC().Format(time.RFC3339Nano) != l.Time {
		return nil, time.Time{}, errors.New("time must be RFC 3339 in UTC")
	}
	if l.Seq == 0 {
		return nil, time.Time{}, errors.New("seq must be at least 1")
	}
	if len(l.Officers) < 1 || len(l.Officers) > MaxOfficers {
		return nil, time.Time{}, errors.New("officers: one to 32 names")
	}
	seen := map[string]bool{}
	for _, o := range l.Officers {
		if !ValidOfficerName(o) || seen[o] {
			return nil, time.Time{}, errors.New("officers: bad or repeated name")
		}
		seen[o] = true
	}
	if !isHex32(l.Prev) {
		return nil, time.Time{}, errors.New("prev must be 64 lowercase hex digits")
	}
	switch l.Kind {
	case LedgerIssue, LedgerDirectory:
		if err := keygen.ValidateIdentity(l.Identity); err != nil {
			return nil, time.Time{}, err
		}
		if !keygen.ValidEpochName(l.Epoch) {
			return nil, time.Time{}, errors.New("bad epoch")
		}
		if l.Role != string(keygen.RoleOf(l.Identity)) {
			return nil, time.Time{}, errors.New("role is not the identity's")
		}
		if !isHex32(l.Key) {
			return nil, time.Time{}, errors.New("key must be 64 lowercase hex digits")
		}
		if l.Sig != "" {
			return nil, time.Time{}, errors.New("only a checkpoint is signed")
		}
	case LedgerCheckpoint:
		if l.Identity != "" || l.Epoch != "" || l.Role != "" || l.Key != "" {
			return nil, time.Time{}, errors.New("a checkpoint names no identity")
		}
		if _, err := wire.UnB64Len(l.Sig, mldsa65.SignatureSize); err != nil {
			return nil, time.Time{}, fmt.Errorf("sig: %w", err)
		}
	default:
		return nil, time.Time{}, fmt.Errorf("unknown kind %.16q", l.Kind)
	}
	return &l, t, nil
}

func isHex32(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && hex.EncodeToString(b) == s
}

func ledgerGenesis(system [16]byte) [32]byte {
	return sha256.Sum256(append(wire.LP16(nil, []byte(labelLedgerGenesis)), system[:]...))
}

// checkpointBytes are what a checkpoint's signature covers.
func checkpointBytes(system [16]byte, l *ledgerLine) []byte {
	b := wire.LP16(nil, []byte(labelLedgerCheckpoint))
	b = append(b, system[:]...)
	b = binary.BigEndian.AppendUint64(b, l.Seq)
	b = wire.LP16(b, []byte(l.Time))
	b = wire.LP16(b, []byte(strings.Join(l.Officers, ",")))
	prev, _ := hex.DecodeString(l.Prev)
	return append(b, prev...)
}

// issuedKeyHash is the ledger's key field for a party key of id in epoch.
func issuedKeyHash(params keygen.Params, id, epoch string) string {
	pj, _ := params.MarshalJSON()
	b := wire.LP16(nil, []byte(labelLedgerKey))
	b = wire.LP16(b, pj)
	b = wire.LP16(b, []byte(id))
	b = wire.LP16(b, []byte(epoch))
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// entryHash is the ledger's key field for a directory entry.
func entryHash(e *keygen.DirectoryEntry) string {
	h := sha256.Sum256(append(wire.LP16(nil, []byte(labelLedgerEntry)), e.SignedBytes()...))
	return hex.EncodeToString(h[:])
}

// LedgerSummary is what a ledger that verifies holds.
type LedgerSummary struct {
	Lines, Issued, Directory, Checkpoints int
	Head                                  [32]byte // SHA-256 of the last line
	Last                                  time.Time
	// Uncovered is the first line after the last checkpoint, 0 if none:
	// lines a command appended but did not sign (it was interrupted).
	Uncovered int
}

// readLedger walks a ledger: every line parses, follows its predecessor
// and, for a checkpoint, verifies under the directory key of params.
func readLedger(r io.Reader, params keygen.Params) (LedgerSummary, error) {
	var s LedgerSummary
	pk, err := directoryPublicKey(params)
	if err != nil {
		return s, err
	}
	s.Head = ledgerGenesis(params.System)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		raw, err := br.ReadSlice('\n')
		if err == io.EOF && len(raw) == 0 {
			break
		}
		n := s.Lines + 1
		if errors.Is(err, bufio.ErrBufferFull) || len(raw) > maxLedgerLine+1 {
			return s, &LedgerError{n, errors.New("line too long")}
		}
		if err == io.EOF {
			return s, &LedgerError{n, errors.New("truncated: no newline at the end")}
		}
		if err != nil {
			return s, err
		}
		line := raw[:len(raw)-1]
		l, t, err := parseLedgerLine(line)
		if err != nil {
			return s, &LedgerError{n, err}
		}
		if l.Seq != uint64(n) {
			return s, &LedgerError{n, fmt.Errorf("seq %d, want %d (a line deleted, moved or inserted)", l.Seq, n)}
		}
		if l.Prev != hex.EncodeToString(s.Head[:]) {
			what := "the genesis hash"
			if n > 1 {
				what = fmt.Sprintf("the hash of line %d (line %d edited, or a line deleted, moved or inserted)", n-1, n-1)
			}
			return s, &LedgerError{n, fmt.Errorf("prev is not %s", what)}
		}
		if t.Before(s.Last) {
			return s, &LedgerError{n, errors.New("time goes backwards")}
		}
		switch l.Kind {
		case LedgerIssue:
			s.Issued++
		case LedgerDirectory:
			s.Directory++
		case LedgerCheckpoint:
			sig, _ := wire.UnB64Len(l.Sig, mldsa65.SignatureSize)
			if !mldsa65.Verify(pk, checkpointBytes(params.System, l), nil, sig) {
				return s, &LedgerError{n, errors.New("checkpoint signature does not verify under the center's directory key")}
			}
			s.Checkpoints++
			s.Uncovered = 0
		}
		if l.Kind != LedgerCheckpoint && s.Uncovered == 0 {
			s.Uncovered = n
		}
		s.Lines, s.Last, s.Head = n, t, sha256.Sum256(line)
	}
	return s, nil
}

func directoryPublicKey(p keygen.Params) (*mldsa65.PublicKey, error) {
	if p.Epochs == nil {
		return nil, fmt.Errorf("%w: suite %s keeps no ledger", ErrLedger, p.Suite)
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(p.Epochs.DirectoryKey[:]); err != nil {
		return nil, fmt.Errorf("directory_key: %w", err)
	}
	return &pk, nil
}

// VerifyLedger walks the ledger of the center in dir (which must end with
// a checkpoint) and summarises it; the error names the first bad line.
func VerifyLedger(dir string) (LedgerSummary, error) {
	params, err := ReadParams(dir)
	if err != nil {
		return LedgerSummary{}, err
	}
	f, err := os.Open(filepath.Join(dir, LedgerFile))
	if err != nil {
		return LedgerSummary{}, fmt.Errorf("%w: %w", ErrLedger, err)
	}
	defer f.Close()
	s, err := readLedger(f, params)
	if err != nil {
		return s, err
	}
	if s.Lines == 0 {
		return s, fmt.Errorf("%w: %s is empty (init writes its first checkpoint)", ErrLedger, LedgerFile)
	}
	if s.Uncovered != 0 {
		return s, &LedgerError{s.Uncovered, fmt.Errorf("lines %d to %d are not covered by a checkpoint (a command was interrupted, or lines were added by hand)", s.Uncovered, s.Lines)}
	}
	return s, nil
}

// ledgerWriter appends to a center's ledger; one at a time per ledger
// (the file is locked while it is open). Safe for concurrent use.
type ledgerWriter struct {
	mu       sync.Mutex
	f        *os.File
	w        *bufio.Writer
	c        *Center
	officers []string
	seq      uint64
	head     [32]byte
	last     time.Time
	err      error // the first write error; later records are refused
}

// openLedger locks the ledger and reads it to its end; a ledger that does
// not verify (but for lines an interrupted command left unsigned, which
// the next checkpoint covers) is refused. create is for init, whose
// ledger is new.
func (c *Center) openLedger(create bool) (*ledgerWriter, error) {
	if c.master.secrets == nil {
		return nil, fmt.Errorf("%w: suite %s keeps no ledger", ErrLedger, c.master.params.Suite)
	}
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	path := filepath.Join(c.dir, LedgerFile)
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLedger, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s is in use by another keygen: %w", ErrLedger, path, err)
	}
	s, err := readLedger(f, c.master.params)
	if err == nil && s.Lines == 0 && !create {
		err = fmt.Errorf("%w: %s is empty (init writes its first checkpoint)", ErrLedger, LedgerFile)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekEnd)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &ledgerWriter{f: f, w: bufio.NewWriterSize(f, 256<<10), c: c, officers: c.officers,
		seq: uint64(s.Lines), head: s.Head, last: s.Last}, nil
}

func (lw *ledgerWriter) append(l *ledgerLine) error {
	if lw.err != nil {
		return lw.err
	}
	t := lw.c.clock().UTC()
	if t.Before(lw.last) {
		t = lw.last // a clock stepped back must not break the chain's order
	}
	l.V, l.Seq, l.Time, l.Officers, l.Prev = 1, lw.seq+1, t.Format(time.RFC3339Nano), lw.officers, hex.EncodeToString(lw.head[:])
	if l.Kind == LedgerCheckpoint {
		sig := make([]byte, mldsa65.SignatureSize)
		if err := mldsa65.SignTo(lw.c.master.secrets.dsa, checkpointBytes(lw.c.master.params.System, l), nil, false, sig); err != nil {
			lw.err = err
			return err
		}
		l.Sig = wire.B64(sig)
	}
	b, err := json.Marshal(l)
	if err == nil {
		_, err = lw.w.Write(append(b, '\n'))
	}
	if err != nil {
		lw.err = fmt.Errorf("%w: %w", ErrLedger, err)
		return lw.err
	}
	lw.seq, lw.last, lw.head = l.Seq, t, sha256.Sum256(b)
	return nil
}

// issued records a party key the center issued.
func (lw *ledgerWriter) issued(k *keygen.PartyKey) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.append(&ledgerLine{Kind: LedgerIssue, Identity: k.Identity(), Epoch: k.Epoch(),
		Role: string(keygen.RoleOf(k.Identity())), Key: issuedKeyHash(k.Params(), k.Identity(), k.Epoch())})
}

// signed records a directory entry the center signed.
func (lw *ledgerWriter) signed(e *keygen.DirectoryEntry) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.append(&ledgerLine{Kind: LedgerDirectory, Identity: e.Identity, Epoch: e.Epoch,
		Role: string(keygen.RoleOf(e.Identity)), Key: entryHash(e)})
}

// commit signs the head with a checkpoint, syncs and unlocks the ledger.
// It is called whatever happened before: what was recorded gets signed.
func (lw *ledgerWriter) commit() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	defer lw.f.Close() // closing releases the lock
	err := lw.append(&ledgerLine{Kind: LedgerCheckpoint})
	if ferr := lw.w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("%w: %w", ErrLedger, ferr)
	}
	if serr := lw.f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("%w: %w", ErrLedger, serr)
	}
	if err == nil {
		lw.c.ledgerLines, lw.c.ledgerHead = lw.seq, hex.EncodeToString(lw.head[:])
	}
	return err
}

// initLedger starts the ledger of a new center with its first checkpoint.
func (c *Center) initLedger() error {
	lw, err := c.openLedger(true)
	if err != nil {
		return err
	}
	return lw.commit()
}
