// Command merchant is orderseal's merchant program; its logic lives in package merchant.
package main

import (
	"orderseal/internal/cli"
	"orderseal/merchant"
)

func main() { cli.Main(merchant.Main) }
