// Package vault is orderseal's token vault (DESIGN.md §7): the only place a
// ship-to address (or phone, email, national id) rests. Everyone else holds
// an opaque token. The vault serves signed requests only: owners register,
// list and reveal their own tokens; a merchant presents a cardholder-sealed
// vault section to obtain a grant; the granted carrier reveals the address
// for one order and invoice, for display only. Every register, grant, reveal
// and rotation is written to a hash-chained audit log.
package vault
