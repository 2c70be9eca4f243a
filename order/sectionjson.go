package order

import (
	"strconv"
	"unicode/utf8"
)

// appendSection appends s exactly as encoding/json's Marshal writes it:
// fields in declaration order, omitempty as tagged, strings HTML-escaped.
// Section commitments cover these bytes, so they must not change; Seal uses
// this instead of Marshal to skip reflection and to keep the plaintext out
// of encoding/json's pooled buffers, which are never cleared.
// TestSectionJSON and FuzzSectionJSON hold it to Marshal.
func appendSection(b []byte, s *Section) []byte {
	w := jsonWriter{b: b}
	w.begin()
	w.str("role", string(s.Role))
	w.str("salt", s.Salt)
	w.str("order_id", s.OrderID)
	c := &s.Content
	w.strOmit("buyer_name", c.BuyerName)
	w.strOmit("buyer_phone", c.BuyerPhone)
	w.strOmit("buyer_email", c.BuyerEmail)
	if len(c.Items) > 0 {
		w.key("items")
		w.b = append(w.b, '[')
		for i, it := range c.Items {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.begin()
			w.str("sku", it.SKU)
			w.str("name", it.Name)
			w.int("qty", it.Qty)
			w.int("unit_price", it.UnitPrice)
			w.end()
		}
		w.b = append(w.b, ']')
	}
	if m := c.Total; m != nil {
		w.key("total")
		w.begin()
		w.int("amount", m.Amount)
		w.str("currency", m.Currency)
		w.end()
	}
	if p := c.Plan; p != nil {
		w.key("plan")
		w.begin()
		w.int("installments", int64(p.Installments))
		w.end()
	}
	if card := c.Card; card != nil {
		w.key("card")
		w.begin()
		w.strOmit("number", card.Number)
		w.strOmit("expiry", card.Expiry)
		w.strOmit("cvc", card.CVC)
		w.end()
	}
	w.strOmit("ship_to_token", c.ShipToken)
	w.strOmit("ship_to_country", c.ShipCountry)
	if a := c.ShipTo; a != nil {
		w.key("ship_to")
		w.begin()
		w.str("name", a.Name)
		w.str("line1", a.Line1)
		w.strOmit("line2", a.Line2)
		w.str("city", a.City)
		w.strOmit("region", a.Region)
		w.strOmit("postal_code", a.PostalCode)
		w.str("country", a.Country)
		w.end()
	}
	if r := c.Recipient; r != nil {
		w.key("recipient")
		w.begin()
		w.strOmit("name", r.Name)
		w.strOmit("phone", r.Phone)
		w.strOmit("customs_code", r.CustomsCode)
		w.end()
	}
	w.strOmit("gift_note", c.GiftNote)
	if g := s.Grant; g != nil {
		w.key("grant")
		w.begin()
		w.str("token", g.Token)
		w.str("merchant", g.Merchant)
		w.str("carrier", g.Carrier)
		w.str("expires", g.Expires)
		if g.MaxUses != 0 {
			w.int("max_uses", int64(g.MaxUses))
		}
		w.end()
	}
	w.strOmit("session", s.Session)
	w.end()
	return w.b
}

// jsonWriter appends the members of nested JSON objects; sep is what goes
// before the next member: '{' at the start of an object, ',' after a member.
type jsonWriter struct {
	b   []byte
	sep byte
}

func (w *jsonWriter) begin() { w.sep = '{' }

// end closes the object; an object left empty gets its opening brace here.
func (w *jsonWriter) end() {
	if w.sep == '{' {
		w.b = append(w.b, '{')
	}
	w.b = append(w.b, '}')
	w.sep = ','
}

// key starts a member; names are fixed ASCII and need no escaping.
func (w *jsonWriter) key(name string) {
	w.b = append(w.b, w.sep, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
	w.sep = ','
}

func (w *jsonWriter) str(name, v string) {
	w.key(name)
	w.b = appendJSONString(w.b, v)
}

func (w *jsonWriter) strOmit(name, v string) {
	if v != "" {
		w.str(name, v)
	}
}

func (w *jsonWriter) int(name string, v int64) {
	w.key(name)
	w.b = strconv.AppendInt(w.b, v, 10)
}

// appendJSONString quotes s as encoding/json does with HTML escaping on:
// ", \ and controls escaped (\b \f \n \r \t by name), <, > and & as \u00XX,
// U+2028 and U+2029 as \u202X, and each invalid UTF-8 byte as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
