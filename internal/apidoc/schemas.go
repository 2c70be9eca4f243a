package apidoc

import (
	"reflect"

	"github.com/getkin/kin-openapi/openapi3"
)

// wireSchemas are the schemas of the types that write their own JSON, by
// package path and name (internal packages sit below the SDK and do not
// import it): what their MarshalJSON writes and their parser accepts, as
// PROTOCOL.md and DESIGN.md §4 define it. Each call returns a new schema.
// Should a type be renamed, its schema here no longer applies and the
// generated one, an object without members, refuses every real body in
// e2e.TestCheckout.
var wireSchemas = map[string]func() *openapi3.Schema{
	"orderseal/order.Bundle":          bundleSchema,
	"orderseal/keygen.DirectoryEntry": directoryEntrySchema,
}

func wireSchema(t reflect.Type) (func() *openapi3.Schema, bool) {
	f, ok := wireSchemas[t.PkgPath()+"."+t.Name()]
	return f, ok
}

// b64 is canonical unpadded base64url.
func b64(desc string) *openapi3.Schema {
	return described(openapi3.NewStringSchema().WithPattern(`^[A-Za-z0-9_-]*$`), desc)
}

func described(s *openapi3.Schema, desc string) *openapi3.Schema {
	s.Description = desc
	return s
}

func object(props map[string]*openapi3.Schema, required ...string) *openapi3.Schema {
	s := openapi3.NewObjectSchema().WithProperties(props)
	s.Required = required
	s.AdditionalProperties = openapi3.AdditionalProperties{Has: ptr(false)}
	return s
}

// roleMap is an object keyed by section role (merchant, issuer, carrier, vault).
func roleMap(value *openapi3.Schema) *openapi3.Schema {
	s := openapi3.NewObjectSchema().WithAdditionalProperties(value)
	s.PropertyNames = openapi3.NewStringSchema().WithEnum("merchant", "issuer", "carrier", "vault").NewRef()
	return s
}

func bundleSchema() *openapi3.Schema {
	section := object(map[string]*openapi3.Schema{
		"nonce": b64("AEAD nonce"),
		"ct":    b64("AEAD ciphertext of the section, its header hash as additional data"),
		"kem":   b64("KEM ciphertext to the recipient's directory key (suites with a KEM)"),
	}, "nonce", "ct")
	s := object(map[string]*openapi3.Schema{
		"v":           openapi3.NewIntegerSchema().WithMin(1),
		"suite":       described(openapi3.NewStringSchema().WithMinLength(1), "the registered suite that sealed it (suite.ByName)"),
		"system":      described(openapi3.NewStringSchema().WithPattern(`^[0-9a-f]{32}$`), "key center system id, hex"),
		"epoch":       openapi3.NewStringSchema().WithMaxLength(16),
		"order_id":    openapi3.NewStringSchema().WithMinLength(1),
		"cardholder":  openapi3.NewStringSchema().WithMaxLength(256),
		"created":     openapi3.NewStringSchema().WithFormat("date-time"),
		"expires":     openapi3.NewStringSchema().WithFormat("date-time"),
		"parties":     roleMap(openapi3.NewStringSchema().WithMaxLength(256)),
		"commitments": roleMap(b64("commitment to the section's plaintext")),
		"kems":        roleMap(b64("SHA-256 of the section's KEM ciphertext")),
		"policy": object(map[string]*openapi3.Schema{
			"id":   openapi3.NewStringSchema().WithMaxLength(64),
			"hash": b64("SHA-256 of the policy"),
		}, "id", "hash"),
		"sections": roleMap(section),
	}, "v", "suite", "system", "order_id", "cardholder", "created", "expires", "parties", "commitments", "sections")
	s.Description = "A sealed order (DESIGN.md §4): the header every party reads, one sealed section per recipient."
	return s
}

func directoryEntrySchema() *openapi3.Schema {
	s := object(map[string]*openapi3.Schema{
		"v":          openapi3.NewIntegerSchema().WithMin(1).WithMax(1),
		"identity":   openapi3.NewStringSchema().WithMaxLength(256),
		"epoch":      openapi3.NewStringSchema().WithMinLength(1).WithMaxLength(16),
		"public_key": b64("the party's KEM public key for the epoch"),
		"not_after":  openapi3.NewStringSchema().WithFormat("date-time"),
		"signature":  b64("the key center's ML-DSA signature over the entry"),
	}, "v", "identity", "epoch", "public_key", "not_after", "signature")
	s.Description = "A party's epoch key, certified by the key center (keygen directory sign)."
	return s
}
