package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"orderseal/issuer/api"
)

// TestSubKeys: a sealed number opens only for its card id and unaltered;
// the lookup hash is keyed and refuses what is not a card number; the key
// check tells card keys apart.
func TestSubKeys(t *testing.T) {
	ks, other := subKeys(t), subKeys(t)
	const id, id2 = "card_aaaaaaaaaaaaaaaaaaaaaaaaaa", "card_bbbbbbbbbbbbbbbbbbbbbbbbbb"
	sn, err := ks.Seal(id, visa)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sn.Ciphertext, []byte(visa)) || len(sn.Nonce) != 24 || !bytes.Equal(sn.Lookup, ks.Lookup(visa)) {
		t.Fatalf("sealed %+v", sn)
	}
	if ok, err := ks.Matches(id, sn, visa); !ok || err != nil {
		t.Fatalf("own number: %v %v", ok, err)
	}
	if ok, err := ks.Matches(id, sn, master); ok || err != nil {
		t.Fatalf("another number: %v %v", ok, err)
	}
	again, _ := ks.Seal(id, visa)
	if bytes.Equal(again.Nonce, sn.Nonce) || bytes.Equal(again.Ciphertext, sn.Ciphertext) || !bytes.Equal(again.Lookup, sn.Lookup) {
		t.Fatal("sealing is not randomized, or the lookup is")
	}
	for name, tamper := range map[string]func(SealedNumber) (string, SealedNumber){
		"another card id": func(s SealedNumber) (string, SealedNumber) { return id2, s },
		"nonce flipped": func(s SealedNumber) (string, SealedNumber) {
			s.Nonce = bytes.Clone(s.Nonce)
			s.Nonce[0] ^= 1
			return id, s
		},
		"ciphertext flipped": func(s SealedNumber) (string, SealedNumber) {
			s.Ciphertext = bytes.Clone(s.Ciphertext)
			s.Ciphertext[len(s.Ciphertext)-1] ^= 1
			return id, s
		},
		"short nonce":   func(s SealedNumber) (string, SealedNumber) { s.Nonce = s.Nonce[:12]; return id, s },
		"no ciphertext": func(s SealedNumber) (string, SealedNumber) { s.Ciphertext = nil; return id, s },
	} {
		cid, s := tamper(sn)
		if ok, err := ks.Matches(cid, s, visa); ok || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v %v", name, ok, err)
		}
	}
	if ok, err := other.Matches(id, sn, visa); ok || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("opened under another card key: %v %v", ok, err)
	}
	if bytes.Equal(other.Lookup(visa), ks.Lookup(visa)) || bytes.Equal(ks.Lookup(visa), ks.Lookup(master)) {
		t.Fatal("lookup hash not keyed or not per number")
	}
	for _, n := range []string{"", "4111 1111 1111 1111", "4111111111111112", "41111"} {
		if ks.Lookup(n) != nil {
			t.Errorf("Lookup(%q) is not nil", n)
		}
	}
	if err := ks.CheckKey(ks.KeyCheck()); err != nil {
		t.Fatal(err)
	}
	if err := ks.CheckKey(other.KeyCheck()); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("another key's check: %v", err)
	}
	if err := ks.CheckKey(nil); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("empty check: %v", err)
	}
}

// TestEnroll: a valid NewCard becomes an active card with its whole limit
// and its number sealed to its fresh id; nothing without the key.
func TestEnroll(t *testing.T) {
	ks := subKeys(t)
	nc := NewCard{Number: visa, Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 500_00}
	at := time.Date(2030, 6, 15, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	c, sn, err := Enroll(ks, nc, at)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidCardID(c.ID) || c != (Card{ID: c.ID, Last4: "1111", Cardholder: alice, Expiry: "2031-12", Currency: "EUR",
		Limit: 500_00, Available: 500_00, Status: StatusActive, Created: at.UTC()}) || c.Created.Location() != time.UTC {
		t.Fatalf("card %+v", c)
	}
	if ok, err := ks.Matches(c.ID, sn, visa); !ok || err != nil {
		t.Fatalf("sealed number: %v %v", ok, err)
	}
	c2, _, err := Enroll(ks, nc, at)
	if err != nil || c2.ID == c.ID {
		t.Fatalf("second id %q %v", c2.ID, err)
	}
	if _, _, err := Enroll(nil, nc, at); !errors.Is(err, ErrNoCardKey) {
		t.Fatalf("without a key: %v", err)
	}
	nc.Limit = 0
	if _, _, err := Enroll(ks, nc, at); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero limit: %v", err)
	}
}

func TestMoveTo(t *testing.T) {
	for _, tc := range []struct {
		from, to Status
		change   bool
		err      error
	}{
		{StatusActive, StatusSuspended, true, nil},
		{StatusSuspended, StatusActive, true, nil},
		{StatusActive, StatusClosed, true, nil},
		{StatusSuspended, StatusSuspended, false, nil},
		{StatusClosed, StatusClosed, false, nil},
		{StatusClosed, StatusActive, false, ErrClosedCard},
		{StatusClosed, StatusSuspended, false, ErrClosedCard},
		{StatusActive, "lost", false, ErrInvalid},
	} {
		change, err := Card{ID: "card_x", Status: tc.from}.MoveTo(tc.to)
		if change != tc.change || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("%s → %s: %v %v", tc.from, tc.to, change, err)
		}
	}
}

func TestCheckCardID(t *testing.T) {
	if err := CheckCardID("card_aaaaaaaaaaaaaaaaaaaaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", visa, "card_AAAAAAAAAAAAAAAAAAAAAAAAAA", "card_aaaa"} {
		if err := CheckCardID(id); !errors.Is(err, ErrNotFound) || (len(id) > 4 && strings.Contains(err.Error(), id)) {
			t.Errorf("CheckCardID(%q): %v", id, err)
		}
	}
}

// TestDecision: the record Decision builds, and when it asks for the CVC
// failures: only for an assisted order on a known card that carries a code.
func TestDecision(t *testing.T) {
	ks := subKeys(t)
	card := &Card{ID: "card_x", Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 100_00, Available: 100_00, Status: StatusActive}
	cvc, err := CVC(ks, visa, "2031-12")
	if err != nil {
		t.Fatal(err)
	}
	var asked []time.Time
	failures := func(n int, err error) func(string, time.Time) (int, error) {
		return func(id string, since time.Time) (int, error) {
			if id != card.ID {
				t.Fatalf("asked for %s", id)
			}
			asked = append(asked, since)
			return n, err
		}
	}
	local := now.In(time.FixedZone("CEST", 2*3600))
	online := request("o", 1, 10_00)
	a, err := Decision(ks, &online, card, local, failures(0, nil))
	if err != nil || a.Decision != api.Approved || len(a.AuthCode) != 6 || a.Reason != "" || a.CardID != card.ID ||
		a.Channel != api.ChannelOnline || a.Sealer != alice || a.Decided != now || a.Decided.Location() != time.UTC || len(asked) != 0 {
		t.Fatalf("online: %+v %v, asked %v", a, err, asked)
	}
	a, err = Decision(ks, &online, nil, now, failures(0, nil))
	if err != nil || a.Decision != api.Declined || a.Reason != api.ReasonNotEnrolled || a.AuthCode != "" || a.CardID != "" || len(asked) != 0 {
		t.Fatalf("no card: %+v %v", a, err)
	}

	phone := assistedRequest("p", 2, 10_00, cvc)
	a, err = Decision(ks, &phone, card, now, failures(MaxCVCFailures-1, nil))
	if err != nil || a.Decision != api.Approved || a.Channel != api.ChannelAssisted || a.Session != session ||
		len(asked) != 1 || !asked[0].Equal(now.Add(-CVCLockWindow)) {
		t.Fatalf("assisted: %+v %v, asked %v", a, err, asked)
	}
	a, err = Decision(ks, &phone, card, now, failures(MaxCVCFailures, nil))
	if err != nil || a.Decision != api.Declined || a.Reason != api.ReasonCVCLocked || a.AuthCode != "" {
		t.Fatalf("locked: %+v %v", a, err)
	}
	wrong := assistedRequest("p", 2, 10_00, "x"+cvc[1:])
	if a, err = Decision(ks, &wrong, card, now, failures(0, nil)); err != nil || a.Reason != api.ReasonCVCMismatch {
		t.Fatalf("wrong code: %+v %v", a, err)
	}
	asked = nil
	none := assistedRequest("p", 2, 10_00, "")
	if a, err = Decision(ks, &none, card, now, failures(0, nil)); err != nil || a.Reason != api.ReasonCVCRequired || len(asked) != 0 {
		t.Fatalf("no code: %+v %v, asked %v", a, err, asked)
	}
	boom := errors.New("boom")
	if _, err = Decision(ks, &phone, card, now, failures(0, boom)); !errors.Is(err, boom) {
		t.Fatalf("failure count error: %v", err)
	}
}

func TestPrepareAuthorize(t *testing.T) {
	ks := subKeys(t)
	r := request("o", 1, 10_00)
	if l, err := PrepareAuthorize(ks, &r); err != nil || !bytes.Equal(l, ks.Lookup(visa)) {
		t.Fatalf("%x %v", l, err)
	}
	r.Number = "4111 1111 1111 1111"
	if l, err := PrepareAuthorize(ks, &r); err != nil || l != nil {
		t.Fatalf("spaced number: %x %v", l, err)
	}
	if _, err := PrepareAuthorize(nil, &r); !errors.Is(err, ErrNoCardKey) {
		t.Fatalf("no key: %v", err)
	}
	r.Amount = 0
	if _, err := PrepareAuthorize(ks, &r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero amount: %v", err)
	}
	prev := Authorization{Merchant: shop, OrderID: "o", HeaderHash: [32]byte{1}, AuthCode: "ABC123"}
	if a, err := Replay(prev, &r); err != nil || a != prev {
		t.Fatalf("replay: %+v %v", a, err)
	}
	r.HeaderHash = [32]byte{2}
	if _, err := Replay(prev, &r); !errors.Is(err, ErrOrderIDReused) {
		t.Fatalf("another bundle: %v", err)
	}
}
