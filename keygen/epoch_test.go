package keygen

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/internal/wire"
	"orderseal/keygen/internal/field"
)

// Epoch suites (OS2, DESIGN.md §2.1): epoch names and spans, params and
// key files with epochs, directory entries. keygen checks their syntax
// only; the points and signatures are suite/os2's (its tests).

const suiteOS2 = "OS2-BLOM25519+SOKBLS12381+XWING-HKDFSHA256-XCHACHA20POLY1305"

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestEpochsSpan(t *testing.T) {
	month := &Epochs{Period: PeriodMonth, Grace: DefaultGrace}
	day := &Epochs{Period: PeriodDay, Grace: time.Hour}
	for _, c := range []struct {
		e                 *Epochs
		epoch, start, end string
		next              string
	}{
		{month, "2026-12", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-01"},
		{month, "2026-01", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02"},
		{month, "2026-02", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03"},
		{month, "2028-02", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z", "2028-03"},
		{month, "0001-01", "0001-01-01T00:00:00Z", "0001-02-01T00:00:00Z", "0001-02"},
		{day, "2026-12-06", "2026-12-06T00:00:00Z", "2026-12-07T00:00:00Z", "2026-12-07"},
		{day, "2026-12-31", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z", "2027-01-01"},
		{day, "2026-02-28", "2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-01"},
		{day, "2028-02-28", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z", "2028-02-29"},
	} {
		start, end, err := c.e.Span(c.epoch)
		if err != nil || !start.Equal(utc(c.start)) || !end.Equal(utc(c.end)) || start.Location() != time.UTC {
			t.Errorf("%s Span(%s) = %s, %s, %v; want %s, %s", c.e.Period, c.epoch, start, end, err, c.start, c.end)
		}
		if n, err := c.e.Next(c.epoch); n != c.next || err != nil {
			t.Errorf("%s Next(%s) = %q, %v; want %s", c.e.Period, c.epoch, n, err, c.next)
		}
		for _, at := range []time.Time{start, end.Add(-time.Nanosecond), start.In(time.FixedZone("", -5*3600))} {
			if got := c.e.At(at); got != c.epoch {
				t.Errorf("%s At(%s) = %s, want %s", c.e.Period, at, got, c.epoch)
			}
		}
		if got := c.e.At(end); got != c.next {
			t.Errorf("%s At(end %s) = %s, want %s", c.e.Period, end, got, c.next)
		}
	}
	// At is in UTC, whatever the zone of its argument.
	if got := month.At(utc("2026-12-31T23:30:00-02:00")); got != "2027-01" {
		t.Errorf("At in another zone = %s", got)
	}
	for _, c := range []struct {
		e     *Epochs
		epoch string
	}{
		{month, ""}, {month, "2026-13"}, {month, "2026-00"}, {month, "2026-1"}, {month, "26-12"}, {month, "2026-12-01"},
		{month, " 2026-12"}, {month, "2026-12\n"}, {month, "2026/12"}, {month, "+2026-12"}, {month, "12-2026"},
		{day, "2026-12"}, {day, "2026-02-30"}, {day, "2026-2-3"}, {day, "2026-12-06T00"}, {day, "2026-12-32"},
	} {
		if _, _, err := c.e.Span(c.epoch); !errors.Is(err, ErrEpoch) {
			t.Errorf("%s Span(%q) = %v, want ErrEpoch", c.e.Period, c.epoch, err)
		}
		if _, err := c.e.Next(c.epoch); !errors.Is(err, ErrEpoch) {
			t.Errorf("%s Next(%q) = %v, want ErrEpoch", c.e.Period, c.epoch, err)
		}
		if err := c.e.Usable(c.epoch, time.Now()); !errors.Is(err, ErrEpoch) {
			t.Errorf("%s Usable(%q) = %v, want ErrEpoch", c.e.Period, c.epoch, err)
		}
	}
}

func TestEpochsUsable(t *testing.T) {
	for _, c := range []struct {
		e     *Epochs
		epoch string
		end   time.Time
	}{
		{&Epochs{Period: PeriodMonth, Grace: DefaultGrace}, "2026-12", utc("2027-01-01T00:00:00Z")},
		{&Epochs{Period: PeriodDay, Grace: 6 * time.Hour}, "2026-12-06", utc("2026-12-07T00:00:00Z")},
		{&Epochs{Period: PeriodDay, Grace: 0}, "2026-12-06", utc("2026-12-07T00:00:00Z")},
		{&Epochs{Period: PeriodMonth, Grace: MaxGrace}, "2026-12", utc("2027-01-01T00:00:00Z")},
	} {
		over := c.end.Add(c.e.Grace)
		for _, ok := range []time.Time{c.end.AddDate(-1, 0, 0), c.end.Add(-time.Hour), over.Add(-time.Nanosecond)} {
			if err := c.e.Usable(c.epoch, ok); err != nil {
				t.Errorf("%s grace %s: Usable at %s: %v", c.epoch, c.e.Grace, ok, err)
			}
		}
		for _, bad := range []time.Time{over, over.Add(time.Nanosecond), over.AddDate(1, 0, 0)} {
			if err := c.e.Usable(c.epoch, bad); !errors.Is(err, ErrEpochOver) || errors.Is(err, ErrEpoch) {
				t.Errorf("%s grace %s: Usable at %s = %v, want ErrEpochOver", c.epoch, c.e.Grace, bad, err)
			}
		}
	}
}

// os2Params are params of an epoch suite with fixed stand-in public values
// (keygen checks their length only).
func os2Params(period string, grace time.Duration) Params {
	p := Params{Suite: suiteOS2, System: [16]byte{0x0e, 1, 2, 3}, K: 3, Epochs: &Epochs{Period: period, Grace: grace}}
	for i := range p.Epochs.SOKPublic {
		p.Epochs.SOKPublic[i] = byte(i)
	}
	for i := range p.Epochs.DirectoryKey {
		p.Epochs.DirectoryKey[i] = byte(i * 7)
	}
	return p
}

func os2Key(t testing.TB, p Params, id, epoch string) *PartyKey {
	t.Helper()
	m := refMasterFromSeed(t, Params{Suite: SuiteOS1, System: p.System, K: p.K}, [32]byte{7})
	row := mustIssue(t, m, id).row // any canonical row: keygen does not check it against the epoch
	sok := bytes.Repeat([]byte{0xa5}, SOKG1Size+SOKG2Size)
	k, err := NewEpochPartyKey(p, id, epoch, row, sok)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEpochParamsAndKeyFile(t *testing.T) {
	for _, c := range []struct {
		period string
		grace  time.Duration
		epoch  string
	}{{PeriodMonth, DefaultGrace, "2026-12"}, {PeriodDay, 0, "2026-12-06"}, {PeriodDay, MaxGrace, "2027-01-01"}} {
		p := os2Params(c.period, c.grace)
		pj, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(pj, []byte(`"epochs":{"period":"`+c.period+`","grace":"`+c.grace.String()+`","sok_public":"`)) {
			t.Errorf("params JSON: %s", pj)
		}
		back, err := ParseParams(pj)
		if err != nil || !back.Equal(p) {
			t.Fatalf("params round trip: %v", err)
		}
		if again, _ := back.MarshalJSON(); !bytes.Equal(again, pj) {
			t.Fatal("params marshal not stable")
		}
		if (Params{Suite: p.Suite, System: p.System, K: p.K}).Equal(p) {
			t.Fatal("params without epochs equal params with")
		}

		k := os2Key(t, p, "merchant:shop.example", c.epoch)
		kj, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		// The hand-built file is encoding/json's.
		raw := make([]byte, p.K*fp.Size)
		for i := range k.row {
			field.Encode(raw[i*fp.Size:], &k.row[i])
		}
		want, _ := json.Marshal(partyKeyWire{V: 1, Suite: p.Suite, System: p.SystemHex(), K: p.K, Epochs: p.Epochs.wire(),
			Identity: k.identity, Epoch: c.epoch, Row: wire.B64(raw), SOK: wire.B64(k.sok)})
		if !bytes.Equal(kj, want) {
			t.Fatalf("key file:\n got %s\nwant %s", kj, want)
		}
		k2, err := ParsePartyKey(kj)
		if err != nil {
			t.Fatal(err)
		}
		if !k2.Equal(k) || k2.Epoch() != c.epoch || !bytes.Equal(k2.SOK(), k.SOK()) || !k2.Params().Equal(p) {
			t.Fatal("key file round trip changed the key")
		}
		// The key of another epoch, or another SOK key, is another key.
		other := os2Key(t, p, "merchant:shop.example", c.epoch)
		other.sok[0] ^= 1
		if other.Equal(k) {
			t.Fatal("keys with different SOK halves are Equal")
		}
	}
}

// TestEpochKeyFileRefusals: what ParsePartyKey and ParseParams refuse in
// the fields an epoch suite adds, each on an otherwise valid file.
func TestEpochKeyFileRefusals(t *testing.T) {
	p := os2Params(PeriodMonth, DefaultGrace)
	kj, _ := os2Key(t, p, "merchant:shop.example", "2026-12").MarshalJSON()
	os1 := mustIssue(t, testMaster(t, 2, testRand("epoch refusals")), "merchant:shop.example")
	os1j, _ := os1.MarshalJSON()
	pj, _ := p.MarshalJSON()
	edit := func(src []byte, f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(src, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	epochs := func(f func(e map[string]any)) func(m map[string]any) {
		return func(m map[string]any) { f(m["epochs"].(map[string]any)) }
	}
	b64n := func(n int) string { return wire.B64(make([]byte, n)) }
	for name, in := range map[string][]byte{
		"epoch on an OS1 key":        edit(os1j, func(m map[string]any) { m["epoch"] = "2026-12" }),
		"sok on an OS1 key":          edit(os1j, func(m map[string]any) { m["sok"] = b64n(SOKG1Size + SOKG2Size) }),
		"missing sok":                edit(kj, func(m map[string]any) { delete(m, "sok") }),
		"empty sok":                  edit(kj, func(m map[string]any) { m["sok"] = "" }),
		"sok one byte short":         edit(kj, func(m map[string]any) { m["sok"] = b64n(SOKG1Size + SOKG2Size - 1) }),
		"sok one byte long":          edit(kj, func(m map[string]any) { m["sok"] = b64n(SOKG1Size + SOKG2Size + 1) }),
		"sok d1 only":                edit(kj, func(m map[string]any) { m["sok"] = b64n(SOKG1Size) }),
		"sok padded":                 edit(kj, func(m map[string]any) { m["sok"] = m["sok"].(string) + "=" }),
		"missing epoch":              edit(kj, func(m map[string]any) { delete(m, "epoch") }),
		"epoch of another period":    edit(kj, func(m map[string]any) { m["epoch"] = "2026-12-06" }),
		"epoch malformed":            edit(kj, func(m map[string]any) { m["epoch"] = "2026-13" }),
		"epochs missing on OS2 key":  edit(kj, func(m map[string]any) { delete(m, "epochs") }),
		"grace not canonical (168h)": edit(kj, epochs(func(e map[string]any) { e["grace"] = "168h" })),
		"sok_public short":           edit(kj, epochs(func(e map[string]any) { e["sok_public"] = b64n(SOKPublicSize - 1) })),
		"unknown member in epochs":   edit(kj, epochs(func(e map[string]any) { e["x"] = 1 })),
		"epoch is a number":          []byte(strings.Replace(string(kj), `"epoch":"2026-12"`, `"epoch":202612`, 1)),
		"duplicate epoch":            []byte(strings.Replace(string(kj), `"epoch":"2026-12"`, `"epoch":"2026-12","epoch":"2026-11"`, 1)),
	} {
		t.Run(name, func(t *testing.T) {
			if k, err := ParsePartyKey(in); !errors.Is(err, ErrKeyFile) || k != nil {
				t.Fatalf("got %v, want ErrKeyFile", err)
			}
		})
	}
	// Missing epochs on an OS2-named key parses as a key without epochs:
	// keygen does not know which suites have them; the suite refuses it
	// (suite/os2 ErrNoEpochs). The test above holds only because the key
	// then carries an epoch and a sok.

	for name, c := range map[string]struct {
		in   []byte
		want error
	}{
		"grace 168h":            {edit(pj, epochs(func(e map[string]any) { e["grace"] = "168h" })), ErrParams},
		"grace 7d":              {edit(pj, epochs(func(e map[string]any) { e["grace"] = "7d" })), ErrParams},
		"grace 60m0s":           {edit(pj, epochs(func(e map[string]any) { e["grace"] = "60m0s" })), ErrParams},
		"grace with a space":    {edit(pj, epochs(func(e map[string]any) { e["grace"] = " 168h0m0s" })), ErrParams},
		"grace empty":           {edit(pj, epochs(func(e map[string]any) { e["grace"] = "" })), ErrParams},
		"grace 0 written 0s":    {edit(pj, epochs(func(e map[string]any) { e["grace"] = "0" })), ErrParams},
		"grace negative":        {edit(pj, epochs(func(e map[string]any) { e["grace"] = "-1s" })), ErrParams},
		"grace over the bound":  {edit(pj, epochs(func(e map[string]any) { e["grace"] = "2160h0m1s" })), ErrParams},
		"grace a number":        {edit(pj, epochs(func(e map[string]any) { e["grace"] = 604800 })), nil},
		"period week":           {edit(pj, epochs(func(e map[string]any) { e["period"] = "week" })), ErrParams},
		"period empty":          {edit(pj, epochs(func(e map[string]any) { e["period"] = "" })), ErrParams},
		"period Month":          {edit(pj, epochs(func(e map[string]any) { e["period"] = "Month" })), ErrParams},
		"sok_public short":      {edit(pj, epochs(func(e map[string]any) { e["sok_public"] = b64n(SOKPublicSize - 1) })), ErrParams},
		"sok_public long":       {edit(pj, epochs(func(e map[string]any) { e["sok_public"] = b64n(SOKPublicSize + 1) })), ErrParams},
		"directory_key short":   {edit(pj, epochs(func(e map[string]any) { e["directory_key"] = b64n(DirectoryKeySize - 1) })), ErrParams},
		"directory_key missing": {edit(pj, epochs(func(e map[string]any) { delete(e, "directory_key") })), ErrParams},
		"epochs not an object":  {edit(pj, func(m map[string]any) { m["epochs"] = "month" }), nil},
		"epochs null":           {edit(pj, func(m map[string]any) { m["epochs"] = nil }), nil},
	} {
		t.Run("params/"+name, func(t *testing.T) {
			p, err := ParseParams(c.in)
			if name == "epochs null" {
				// null is an absent member (§1.5): params without epochs.
				if err != nil || p.Epochs != nil {
					t.Fatalf("got %v, %+v", err, p.Epochs)
				}
				return
			}
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// A grace of zero is written "0s" and reads back.
	z := os2Params(PeriodDay, 0)
	zj, _ := z.MarshalJSON()
	if back, err := ParseParams(zj); err != nil || !back.Equal(z) || !bytes.Contains(zj, []byte(`"grace":"0s"`)) {
		t.Fatalf("zero grace: %s, %v", zj, err)
	}

	// The constructors refuse what the parser refuses.
	row := os1.row
	if _, err := NewEpochPartyKey(os1.params, "merchant:a", "2026-12", row, make([]byte, SOKG1Size+SOKG2Size)); !errors.Is(err, ErrParams) {
		t.Errorf("NewEpochPartyKey with OS1 params: %v", err)
	}
	p2 := os2Params(PeriodMonth, DefaultGrace)
	p2.K = 2
	if _, err := NewEpochPartyKey(p2, "merchant:a", "2026-12-01", row, make([]byte, SOKG1Size+SOKG2Size)); !errors.Is(err, ErrEpoch) {
		t.Errorf("NewEpochPartyKey with a day under months: %v", err)
	}
	if _, err := NewEpochPartyKey(p2, "merchant:a", "2026-12", row, make([]byte, SOKG1Size)); !errors.Is(err, ErrParams) {
		t.Errorf("NewEpochPartyKey with a short sok: %v", err)
	}
	if _, err := NewPartyKey(p2, "merchant:a", row); !errors.Is(err, ErrParams) {
		t.Errorf("NewPartyKey with epoch params: %v", err)
	}
}

func TestIdentityPointIn(t *testing.T) {
	sys := [16]byte{1, 2, 3}
	id := "merchant:shop.example"
	x1, err := IdentityPoint(sys, id)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[fp.Elt]string{x1: "OS1"}
	for _, e := range []string{"2026-12", "2027-01", "2026-12-06"} {
		x, err := IdentityPointIn(sys, id, e)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[x]; dup {
			t.Fatalf("x(%s, %s) = x of %s", id, e, prev)
		}
		seen[x] = e
		// The message is lp16(id) || lp16(epoch), not id || epoch.
		want, _ := hashToField("orderseal-v2-id:"+hexOf(sys), wire.LP16(wire.LP16(nil, []byte(id)), []byte(e)))
		if x != want {
			t.Fatalf("x(%s, %s) is not hash_to_field(lp16(id) || lp16(epoch))", id, e)
		}
	}
	if _, err := IdentityPointIn(sys, id, ""); !errors.Is(err, ErrEpoch) {
		t.Errorf("empty epoch: %v", err)
	}
	if _, err := IdentityPointIn(sys, "Merchant:x", "2026-12"); !errors.Is(err, ErrIdentity) {
		t.Errorf("bad identity: %v", err)
	}
	a, _ := DerivePairwiseIn(sys, []byte("ikm"), LabelPairwiseOS2, "2026-12", "merchant:a", "issuer:b")
	b, _ := DerivePairwiseIn(sys, []byte("ikm"), LabelPairwiseOS2, "2026-12", "issuer:b", "merchant:a")
	c, _ := DerivePairwiseIn(sys, []byte("ikm"), LabelPairwiseOS2, "2027-01", "merchant:a", "issuer:b")
	if !a.Equal(&b) || a.Equal(&c) {
		t.Error("DerivePairwiseIn: not symmetric, or the same in two epochs")
	}
	if _, err := DerivePairwiseIn(sys, nil, LabelPairwiseOS2, "", "merchant:a", "issuer:b"); !errors.Is(err, ErrEpoch) {
		t.Errorf("DerivePairwiseIn without an epoch: %v", err)
	}
	if _, err := DerivePairwiseIn(sys, nil, LabelPairwiseOS2, "2026-12", "merchant:a", "merchant:a"); !errors.Is(err, ErrSameIdentity) {
		t.Errorf("DerivePairwiseIn with oneself: %v", err)
	}
}

func hexOf(b [16]byte) string { return Params{System: b}.SystemHex() }

func TestDirectoryEntryJSON(t *testing.T) {
	e := &DirectoryEntry{Identity: "issuer:bank.example", Epoch: "2026-12", PublicKey: bytes.Repeat([]byte{1}, KEMPublicKeySize),
		NotAfter: utc("2027-01-08T00:00:00Z"), Signature: bytes.Repeat([]byte{2}, DirectorySignature)}
	raw, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var back DirectoryEntry
	if err := back.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	if back.Identity != e.Identity || back.Epoch != e.Epoch || !back.NotAfter.Equal(e.NotAfter) ||
		!bytes.Equal(back.PublicKey, e.PublicKey) || !bytes.Equal(back.Signature, e.Signature) {
		t.Fatal("entry round trip")
	}
	if again, _ := back.MarshalJSON(); !bytes.Equal(again, raw) {
		t.Fatal("entry marshal not stable")
	}
	// SignedBytes, byte for byte.
	want := []byte("orderseal-v2-directory")
	want = wire.LP16(want, []byte(e.Identity))
	want = wire.LP16(want, []byte(e.Epoch))
	want = wire.LP16(want, e.PublicKey)
	want = wire.LP16(want, []byte("2027-01-08T00:00:00Z"))
	if !bytes.Equal(e.SignedBytes(), want) {
		t.Fatal("SignedBytes")
	}
	// not_after signs as UTC whatever the zone it is held in.
	z := *e
	z.NotAfter = e.NotAfter.In(time.FixedZone("", 3600))
	if !bytes.Equal(z.SignedBytes(), want) {
		t.Fatal("SignedBytes depends on not_after's zone")
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(raw, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	for name, in := range map[string][]byte{
		"v 2":                   edit(func(m map[string]any) { m["v"] = 2 }),
		"v missing":             edit(func(m map[string]any) { delete(m, "v") }),
		"bad identity":          edit(func(m map[string]any) { m["identity"] = "Issuer:bank" }),
		"empty epoch":           edit(func(m map[string]any) { m["epoch"] = "" }),
		"epoch with a letter":   edit(func(m map[string]any) { m["epoch"] = "2026-1x" }),
		"epoch too long":        edit(func(m map[string]any) { m["epoch"] = "2026-12-06-00-00-0" }),
		"public key short":      edit(func(m map[string]any) { m["public_key"] = wire.B64(make([]byte, KEMPublicKeySize-1)) }),
		"public key standard":   edit(func(m map[string]any) { m["public_key"] = strings.ReplaceAll(m["public_key"].(string), "A", "+") }),
		"signature long":        edit(func(m map[string]any) { m["signature"] = wire.B64(make([]byte, DirectorySignature+1)) }),
		"signature missing":     edit(func(m map[string]any) { delete(m, "signature") }),
		"not_after with offset": edit(func(m map[string]any) { m["not_after"] = "2027-01-08T01:00:00+01:00" }),
		"not_after fractional":  edit(func(m map[string]any) { m["not_after"] = "2027-01-08T00:00:00.5Z" }),
		"not_after lower z":     edit(func(m map[string]any) { m["not_after"] = "2027-01-08T00:00:00z" }),
		"not_after a date":      edit(func(m map[string]any) { m["not_after"] = "2027-01-08" }),
		"unknown member":        edit(func(m map[string]any) { m["x"] = 1 }),
		"duplicate member":      []byte(strings.Replace(string(raw), `"v":1,`, `"v":1,"v":1,`, 1)),
		"trailing data":         append(bytes.Clone(raw), '{', '}'),
		"too large":             []byte(`{"v":1,"identity":"` + strings.Repeat("a", maxEntry) + `"}`),
	} {
		t.Run(name, func(t *testing.T) {
			var d DirectoryEntry
			if err := d.UnmarshalJSON(in); !errors.Is(err, ErrDirectory) {
				t.Fatalf("got %v, want ErrDirectory", err)
			}
		})
	}
	// Every epoch name of either period is an entry epoch.
	for _, ep := range []string{"2026-12", "2026-12-06", "1", "-"} {
		if !ValidEpochName(ep) {
			t.Errorf("ValidEpochName(%q)", ep)
		}
	}
}
