// Command carrier is orderseal's carrier program; its logic lives in package carrier.
package main

import (
	"orderseal/carrier"
	"orderseal/internal/cli"
)

func main() { cli.Main(carrier.Main) }
