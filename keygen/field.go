package keygen

import "orderseal/keygen/internal/field"

// ErrNonCanonical is returned for a field element encoding that is ≥ p.
var ErrNonCanonical = field.ErrNonCanonical
