package field

// HaveADX reports whether this build and CPU can run the MULX/ADX kernels
// of fe_amd64.s.
func HaveADX() bool { return haveADX }

// UseADX selects the MULX/ADX kernels (on) or the portable code (off) and
// returns the previous choice, so that callers' tests can run both paths.
// It panics when on is asked for without HaveADX. Not safe while another
// goroutine computes.
func UseADX(on bool) (was bool) {
	if on && !haveADX {
		panic("field: no ADX kernel on this platform")
	}
	was, useADX = useADX, on
	return was
}
