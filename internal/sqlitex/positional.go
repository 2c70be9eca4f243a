package sqlitex

import (
	"database/sql/driver"
	"sync"
)

// positional is a query whose numbered placeholders ($1, ?2, …) are
// written as SQLite's anonymous ?, with the number each ? stood for.
//
// The stores share their SQL with PostgreSQL, so it numbers its
// parameters, and SQLite keeps the name of every numbered parameter in a
// list that sqlite3_bind_parameter_name scans from the start: the driver
// asks for every parameter's name when it binds, so binding n numbered
// parameters costs n²/2 steps. A vault batch of 1 000 entries binds about
// 6 000 and spent most of its time there. Anonymous parameters have no
// names, so each costs one step.
type positional struct {
	query string
	order []int // the argument (1-based) each ? binds; nil: run the query as it is
}

// positionals caches positionalOf by query text; the daemons' queries are
// a bounded set (IN lists come in a few fixed chunk sizes).
var positionals sync.Map // string → *positional

// maxPositionals bounds the cache; past it, queries are rewritten on
// every call.
const maxPositionals = 4096

var positionalCount struct {
	sync.Mutex
	n int
}

func positionalFor(query string) *positional {
	if p, ok := positionals.Load(query); ok {
		return p.(*positional)
	}
	p := positionalOf(query)
	positionalCount.Lock()
	if positionalCount.n < maxPositionals {
		positionalCount.n++
		positionalCount.Unlock()
		positionals.Store(query, p)
	} else {
		positionalCount.Unlock()
	}
	return p
}

// positionalOf rewrites query's $N and ?N placeholders outside string
// literals, quoted identifiers and comments as ?. A query with no
// placeholder, or with an anonymous or named one (?, :a, @a, $a), is left
// as it is.
func positionalOf(query string) *positional {
	as := &positional{query: query}
	var out []byte
	var order []int
	last := 0 // query[last:i] is not yet copied to out
	for i := 0; i < len(query); {
		switch c := query[i]; c {
		case '\'', '"', '`':
			i = skipQuoted(query, i, c)
		case '[':
			i = skipQuoted(query, i, ']')
		case '-':
			if i+1 < len(query) && query[i+1] == '-' {
				for i < len(query) && query[i] != '\n' {
					i++
				}
			} else {
				i++
			}
		case '/':
			if i+1 < len(query) && query[i+1] == '*' {
				i += 2
				for i < len(query) && !(query[i] == '*' && i+1 < len(query) && query[i+1] == '/') {
					i++
				}
				i = min(i+2, len(query))
			} else {
				i++
			}
		case ':', '@':
			if i+1 < len(query) && (isNameByte(query[i+1]) || isDigit(query[i+1])) {
				return as // a named parameter: leave the query alone
			}
			i++
		case '$', '?':
			j := i + 1
			n := 0
			for j < len(query) && isDigit(query[j]) && n <= 1<<20 {
				n = n*10 + int(query[j]-'0')
				j++
			}
			if j == i+1 {
				if c == '$' && !(i+1 < len(query) && isNameByte(query[i+1])) {
					i++ // a lone $, not a parameter
					continue
				}
				return as // anonymous ? or a named $a: leave the query alone
			}
			if query[i+1] == '0' || n > 1<<20 || (j < len(query) && (isNameByte(query[j]) || isDigit(query[j]))) {
				return as // not a plain number (the driver matches $N to argument N only without leading zeros)
			}
			out = append(out, query[last:i]...)
			out = append(out, '?')
			order = append(order, n)
			last, i = j, j
		default:
			i++
		}
	}
	if order == nil {
		return as
	}
	out = append(out, query[last:]...)
	return &positional{query: string(out), order: order}
}

// skipQuoted returns the index after the quoted text that starts at i
// and ends with end (a doubled end stands for itself), or len(q).
func skipQuoted(q string, i int, end byte) int {
	for i++; i < len(q); i++ {
		if q[i] == end {
			if i+1 < len(q) && q[i+1] == end && end != ']' {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(q)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// bind returns the query and arguments to run: p's ? placeholders with
// args in their order, or query and args unchanged when p rewrote nothing
// or args do not fit it (a named argument, or a number past the last; the
// driver then answers as it would have).
func (p *positional) bind(query string, args []driver.NamedValue) (string, []driver.NamedValue) {
	if p.order == nil {
		return query, args
	}
	for _, a := range args {
		if a.Name != "" {
			return query, args
		}
	}
	out := make([]driver.NamedValue, len(p.order))
	for j, n := range p.order {
		if n > len(args) || args[n-1].Ordinal != n {
			return query, args
		}
		out[j] = driver.NamedValue{Ordinal: j + 1, Value: args[n-1].Value}
	}
	return p.query, out
}
