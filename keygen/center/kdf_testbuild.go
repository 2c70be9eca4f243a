//go:build orderseal_testkdf

package center

// A binary built with -tags orderseal_testkdf (only the e2e and cluster
// harnesses build one) honours ORDERSEAL_CENTER_KDF=fast.
func init() { AllowFastKDF = true }
