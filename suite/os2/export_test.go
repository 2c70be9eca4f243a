package os2

import (
	"weak"

	"orderseal/keygen"
)

// SOKCached reports whether the key wp points to has decoded points in the
// cache; wp may point to a key since collected.
func SOKCached(wp weak.Pointer[keygen.PartyKey]) bool {
	sokPoints.Lock()
	defer sokPoints.Unlock()
	_, ok := sokPoints.m[wp]
	return ok
}
