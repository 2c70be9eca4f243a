// Command keygen is orderseal's keygen program; its logic lives in package keygen.
package main

import (
	"orderseal/internal/cli"
	"orderseal/keygen"
)

func main() { cli.Main(keygen.Main) }
