// Package order is the orderseal order model, section policy and sealed bundle (DESIGN.md §3–4).
package order
