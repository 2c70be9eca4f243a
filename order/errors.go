package order

import "errors"

// Errors returned by bundle decoding, Seal and Open. Each refusal has its own
// sentinel so callers (and problem+json codes) can tell them apart with errors.Is.
var (
	ErrMalformed    = errors.New("malformed bundle")
	ErrTooLarge     = errors.New("bundle too large")
	ErrVersion      = errors.New("unsupported bundle version")
	ErrSuite        = errors.New("unsupported suite")
	ErrSystem       = errors.New("bundle belongs to another key system")
	ErrParties      = errors.New("invalid party identities")
	ErrNoSection    = errors.New("no section for this role")
	ErrNotRecipient = errors.New("key is not the recipient of this section")
	ErrExpired      = errors.New("bundle expired")
	ErrNotYetValid  = errors.New("bundle created in the future")
	ErrAuth         = errors.New("section does not authenticate")
	ErrCommitment   = errors.New("section does not match its commitment")
	ErrSectionBody  = errors.New("section plaintext invalid")
	ErrSealer       = errors.New("key cannot seal orders")
	// Suites with epochs and a KEM (OS2).
	ErrEpoch     = errors.New("bundle of another epoch than the key")
	ErrDirectory = errors.New("no valid directory entry for a recipient")
	ErrKEM       = errors.New("section KEM ciphertext invalid")
	ErrNoKEM     = errors.New("no KEM secret for the bundle's epoch")
	// ErrNotAccepted: a bundle of a suite the recipient holds keys of but no
	// longer accepts (OS1 after the party's -accept-os1-until).
	ErrNotAccepted = errors.New("bundle suite not accepted by this party")
	// ErrKeyExpired wraps keygen.ErrEpochOver: the key's epoch and grace are over.
	ErrKeyExpired = errors.New("key's epoch and grace are over")
	// ErrEntryMissing and ErrEntryEpoch wrap ErrDirectory: no entry names
	// the recipient, or only entries of another epoch do.
	ErrEntryMissing = errors.New("no directory entry names the recipient")
	ErrEntryEpoch   = errors.New("the recipient's directory entry is of another epoch")
)
