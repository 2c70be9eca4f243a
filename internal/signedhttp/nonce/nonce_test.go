package nonce_test

import (
	"testing"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncetest"
)

func TestMemory(t *testing.T) {
	noncetest.Run(t, func(t *testing.T, quota int) nonce.Store {
		return nonce.NewMemory(nonce.Fixed(quota))
	})
}
