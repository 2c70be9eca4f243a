package order

import "errors"

// Stable codes of the refusals a suite with epochs and a KEM (OS2) adds,
// for the daemons' problem+json answers and the CLIs' messages: one code
// per cause, never reused, whatever the wording of the error.
const (
	CodeWrongEpoch   = "wrong-epoch"             // a bundle of an epoch the party holds no key of (or a malformed epoch)
	CodeKEMInvalid   = "kem-invalid"             // a section's KEM ciphertext of the wrong length, or not the header's
	CodeKEMDestroyed = "kem-secret-destroyed"    // the epoch's KEM secret was pruned: the section is shut for good
	CodeNotAccepted  = "suite-not-accepted"      // a suite the party holds keys of but no longer accepts (OS1)
	CodeDirectory    = "directory-invalid"       // a recipient's directory entry does not verify (sealing)
	CodeEntryMissing = "directory-entry-missing" // no directory entry names a recipient (sealing)
	CodeEntryEpoch   = "directory-entry-epoch"   // a recipient's entries are all of another epoch (sealing)
	CodeKeyExpired   = "key-expired"             // the party's own key: its epoch and grace are over
)

// suiteCodes maps each sentinel to its code; the first match wins.
var suiteCodes = []struct {
	err  error
	code string
}{
	{ErrNotAccepted, CodeNotAccepted},
	{ErrNoKEM, CodeKEMDestroyed},
	{ErrKEM, CodeKEMInvalid},
	{ErrEpoch, CodeWrongEpoch},
	{ErrKeyExpired, CodeKeyExpired},
	{ErrEntryMissing, CodeEntryMissing},
	{ErrEntryEpoch, CodeEntryEpoch},
	{ErrDirectory, CodeDirectory},
}

// SuiteCode is the stable code of a refusal that comes from the bundle's
// suite, its epoch or its KEM; ok is false for every other error (which
// the caller answers as it always has).
func SuiteCode(err error) (code string, ok bool) {
	for _, c := range suiteCodes {
		if errors.Is(err, c.err) {
			return c.code, true
		}
	}
	return "", false
}
