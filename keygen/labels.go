package keygen

// The labels of every key orderseal derives from a pairwise key K, one per
// purpose (DESIGN.md §2 "Sub-keys", PROTOCOL.md "Key derivation labels").
// Each is the first lp16 field of the HKDF info (Info), so no label runs
// into its context or another label; TestLabels holds the whole tree to
// this list.
const (
	// LabelPairwise is the info label of K itself under suite OS1.
	LabelPairwise = "orderseal-v1-pairwise"
	// LabelPairwiseOS2 is the info label of K under suite OS2 (DESIGN.md §2.1).
	LabelPairwiseOS2 = "orderseal-v2-pairwise"

	LabelSection       = "orderseal-v1-section"        // a bundle section's AEAD key (suite OS1)
	LabelSectionOS2    = "orderseal-v2-section"        // a bundle section's AEAD key (suite OS2: Mix of K and the KEM secret)
	LabelHTTP          = "orderseal-v1-http"           // the MAC key of signed requests and responses
	LabelHTTPKeyID     = "orderseal-v1-http-keyid"     // the key confirmation sent with a signed request
	LabelFingerprint   = "orderseal-v1-fingerprint"    // the out-of-band fingerprint of K
	LabelRegister      = "orderseal-v1-register"       // a value sealed by its owner for the vault
	LabelReveal        = "orderseal-v1-reveal"         // a value the vault seals for one reader and order
	LabelCompanyLogin  = "orderseal-v1-company-login"  // a company's signature on a consultant's login
	LabelAssistedID    = "orderseal-v1-assisted-id"    // an assisted session's second identifier, sealed for the consultant
	LabelAssistedProof = "orderseal-v1-assisted-proof" // the proof an assisted order carries
	LabelVaultApproval = "orderseal-v1-vault-approval" // the issuer's approval of an order, MACed for the vault (K(issuer, vault))

	// LabelAssistedSessionFile keys the consultant terminal's session file:
	// Mix of K(consultant, merchant) and the terminal's device key seed.
	LabelAssistedSessionFile = "orderseal-v1-assisted-session-file"
)

// Labels lists every sub-key label Expand takes.
var Labels = []string{
	LabelSection, LabelSectionOS2, LabelHTTP, LabelHTTPKeyID, LabelFingerprint, LabelRegister,
	LabelReveal, LabelCompanyLogin, LabelAssistedID, LabelAssistedProof, LabelVaultApproval, LabelAssistedSessionFile,
}

func knownLabel(l string) bool {
	for _, k := range Labels {
		if k == l {
			return true
		}
	}
	return false
}
