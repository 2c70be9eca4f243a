// Command keygen is orderseal's key center program; its logic lives in
// package keygen/center.
package main

import (
	"orderseal/internal/cli"
	"orderseal/keygen/center"
)

func main() { cli.Main(center.Main) }
