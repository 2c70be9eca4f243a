//go:build !amd64 || purego

package field

import fp "github.com/cloudflare/circl/math/fp25519"

// Without the amd64 kernels, fe.go's portable code does all the work.
const haveADX = false

var useADX = false

func dotAddADX(w *Wide, a, b *fp.Elt, n int) { panic("keygen: no ADX kernel on this platform") }

func winogradAddADX(w *Wide, d, v *fp.Elt, n int) { panic("keygen: no ADX kernel on this platform") }
