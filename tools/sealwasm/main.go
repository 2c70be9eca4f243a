// Command sealwasm is the smallest sealing program: it measures what the
// SDK (keygen, order and the suite registry alone) costs a browser page compiled to
// WebAssembly (GOOS=js GOARCH=wasm; README "Performance").
//
//	sealwasm KEYFILE ORDER.json MERCHANT ISSUER CARRIER > bundle.json
package main

import (
	"fmt"
	"os"

	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: sealwasm KEYFILE ORDER.json MERCHANT ISSUER CARRIER")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], order.Parties{Merchant: os.Args[3], Issuer: os.Args[4], Carrier: os.Args[5]}); err != nil {
		fmt.Fprintln(os.Stderr, "sealwasm: error:", err)
		os.Exit(1)
	}
}

func run(keyPath, orderPath string, parties order.Parties) error {
	key, err := keygen.LoadPartyKey(keyPath)
	if err != nil {
		return err
	}
	defer key.Destroy()
	data, err := os.ReadFile(orderPath)
	if err != nil {
		return err
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		return err
	}
	b, err := order.Seal(o, suite.NewKeys(key, 4), parties, order.SealOptions{})
	if err != nil {
		return err
	}
	out, err := b.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", out)
	return err
}
