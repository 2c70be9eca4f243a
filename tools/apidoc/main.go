// Command apidoc writes each daemon's OpenAPI document, openapi.json in its
// package, from the daemon's route table (make openapi). With -check it
// writes nothing and exits 1 when a committed document is out of date.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"orderseal/carrier"
	"orderseal/internal/apidoc"
	"orderseal/internal/apiroute"
	"orderseal/issuer"
	"orderseal/merchant"
	"orderseal/vault"
)

func main() {
	check := flag.Bool("check", false, "only report documents that are out of date")
	root := flag.String("root", ".", "module root")
	flag.Parse()
	stale := 0
	for _, d := range []struct {
		dir string
		api apiroute.API
	}{{"merchant", merchant.API()}, {"issuer", issuer.API()}, {"carrier", carrier.API()}, {"vault", vault.API()}} {
		doc, err := apidoc.JSON(d.api)
		if err != nil {
			fmt.Fprintf(os.Stderr, "apidoc: error: %v\n", err)
			os.Exit(1)
		}
		path := filepath.Join(*root, d.dir, "openapi.json")
		old, _ := os.ReadFile(path)
		if bytes.Equal(old, doc) {
			continue
		}
		stale++
		if *check {
			fmt.Fprintf(os.Stderr, "apidoc: %s is out of date\n", path)
			continue
		}
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "apidoc: error: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("apidoc: wrote %s\n", path)
	}
	if *check && stale > 0 {
		fmt.Fprintln(os.Stderr, "hint: run 'make openapi'")
		os.Exit(1)
	}
}
