// Command issuer is orderseal's issuer program; its logic lives in package issuer.
package main

import (
	"orderseal/internal/cli"
	"orderseal/issuer"
)

func main() { cli.Main(issuer.Main) }
