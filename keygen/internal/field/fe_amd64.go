//go:build amd64 && !purego

package field

import (
	fp "github.com/cloudflare/circl/math/fp25519"
	"golang.org/x/sys/cpu"
)

// haveADX reports whether the CPU can run the kernels of fe_amd64.s.
var haveADX = cpu.X86.HasBMI2 && cpu.X86.HasADX

// useADX selects them; tests turn it off to check the portable code.
var useADX = haveADX

//go:noescape
func dotAddADX(w *Wide, a, b *fp.Elt, n int)

//go:noescape
func winogradAddADX(w *Wide, d, v *fp.Elt, n int)
