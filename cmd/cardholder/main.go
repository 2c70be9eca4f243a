// Command cardholder is orderseal's cardholder program; its logic lives in package cardholder.
package main

import (
	"orderseal/cardholder"
	"orderseal/internal/cli"
)

func main() { cli.Main(cardholder.Main) }
