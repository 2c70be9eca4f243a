package merchant_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"orderseal/assisted"
	"orderseal/internal/cli"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/wire"
	"orderseal/merchant"
	"orderseal/merchant/api"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// login opens a session for consultant on device and returns it with its
// second identifier, opened as the consultant's terminal would.
func (e *env) login(t testing.TB, consultant, device string, shift time.Duration) (*api.Session, []byte) {
	t.Helper()
	r, err := api.NewLogin(keys.Keys(t, keys.CallCenter), deviceKey(t, device), keys.Shop, consultant, device, shift, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.client(t, consultant).Login(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := assisted.OpenSecret(keys.Keys(t, consultant), keys.Shop, s.Session, s.Device, s.SealedID)
	if err != nil {
		t.Fatal(err)
	}
	return s, secret
}

// deviceKey is the device key of the terminal named name, the same on each
// call: the tests' terminals are known by name.
func deviceKey(t testing.TB, name string) *assisted.DeviceKey {
	t.Helper()
	seed := sha256.Sum256([]byte("test device " + name))
	k, err := assisted.NewDeviceKey(bytes.NewReader(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// deviceSig is the signature of terminal device on an order's proof.
func deviceSig(t testing.TB, b *order.Bundle, session, device string, proof api.Sealed) []byte {
	return deviceKey(t, device).SignOrder(keys.Shop, b.Cardholder, session, device, b.HeaderHash(), proof)
}

// phoneOrder is an order keyed by a consultant for an inline address.
func phoneOrder(t testing.TB) *order.Order {
	o := testOrder(t, "")
	o.ShipTo = order.ShipTo{Address: &order.Address{Name: "Dora Example", Line1: "Kastanienallee 3", City: "Berlin", PostalCode: "10115", Country: "DE"}}
	return o
}

var phoneParties = order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel}

func TestAssistedLogin(t *testing.T) {
	e := newEnv(t)
	good := func(t *testing.T) *api.LoginRequest {
		r, err := api.NewLogin(keys.Keys(t, keys.CallCenter), deviceKey(t, "desk-7"), keys.Shop, keys.Carol, "desk-7", time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	body := func(edit func(r *api.LoginRequest)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			r := good(t)
			edit(r)
			b, _ := json.Marshal(r)
			return b
		}
	}
	resign := func(company string, edit func(r *api.LoginRequest)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			r, err := api.NewLogin(keys.Keys(t, company), deviceKey(t, "desk-7"), keys.Shop, keys.Carol, "desk-7", time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			edit(r)
			b, _ := json.Marshal(r)
			return b
		}
	}
	tests := []struct {
		name   string
		caller string
		body   func(t *testing.T) []byte
		status int
		code   string
	}{
		{"no company signature", keys.Carol, body(func(r *api.LoginRequest) { r.CompanySignature = "" }), http.StatusBadRequest, api.CodeLoginInvalid},
		{"a made-up company signature", keys.Carol, body(func(r *api.LoginRequest) { r.CompanySignature = wire.B64(make([]byte, 32)) }),
			http.StatusForbidden, api.CodeCompanySignature},
		{"the signature of another device", keys.Carol, body(func(r *api.LoginRequest) { r.Device = "desk-8" }), http.StatusForbidden, api.CodeCompanySignature},
		{"the signature of a longer shift", keys.Carol, body(func(r *api.LoginRequest) { r.ShiftSeconds *= 2 }), http.StatusForbidden, api.CodeCompanySignature},
		{"a company the merchant does not work with", keys.Carol, resign(rogueCoID, func(*api.LoginRequest) {}), http.StatusForbidden, api.CodeCompanyNotAccepted},
		{"signed by another consultant", daveID, body(func(*api.LoginRequest) {}), http.StatusForbidden, api.CodeLoginInvalid},
		{"signed by a cardholder", keys.Alice, body(func(*api.LoginRequest) {}), http.StatusForbidden, httpsig.CodeForbiddenRole},
		{"dated outside the window", keys.Carol, func(t *testing.T) []byte {
			r, err := api.NewLogin(keys.Keys(t, keys.CallCenter), deviceKey(t, "desk-7"), keys.Shop, keys.Carol, "desk-7", time.Hour, time.Now().Add(-10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(r)
			return b
		}, http.StatusUnauthorized, api.CodeLoginStale},
		{"bad device", keys.Carol, body(func(r *api.LoginRequest) { r.Device = "Desk 7" }), http.StatusBadRequest, api.CodeLoginInvalid},
		{"zero shift", keys.Carol, body(func(r *api.LoginRequest) { r.ShiftSeconds = 0 }), http.StatusBadRequest, api.CodeLoginInvalid},
		{"unknown field", keys.Carol, func(t *testing.T) []byte {
			b, _ := json.Marshal(good(t))
			return append([]byte(`{"admin":true,`), b[1:]...)
		}, http.StatusBadRequest, "malformed-json"},
		{"oversize", keys.Carol, func(t *testing.T) []byte {
			return append([]byte(`{"consultant":"`), bytes.Repeat([]byte("a"), api.MaxLoginBody)...)
		}, http.StatusRequestEntityTooLarge, "body-too-large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, h, b := e.signedPost(t, tc.caller, api.PathSessions, tc.body(t))
			problemOf(t, st, h, b, tc.status, tc.code)
			if n := e.count(t, "assisted_sessions"); n != 0 {
				t.Fatalf("a refused login stored %d sessions", n)
			}
		})
	}

	t.Run("a login opens one live session per device; a later one ends the earlier", func(t *testing.T) {
		first, secret := e.login(t, keys.Carol, "desk-7", time.Hour)
		if first.State != api.SessionLive || first.Consultant != keys.Carol || first.Company != keys.CallCenter || !order.ValidSession(first.Session) {
			t.Fatalf("session %+v", first)
		}
		// The merchant keeps a hash, never the identifier.
		sess, err := e.st.Session(context.Background(), first.Session)
		if err != nil {
			t.Fatal(err)
		}
		stored := sess.SecretHash
		if h := assisted.SecretHash(secret); !bytes.Equal(stored, h[:]) || bytes.Contains(stored, secret) {
			t.Fatal("stored hash is not the identifier's")
		}
		other, _ := e.login(t, keys.Carol, "desk-8", time.Hour)
		second, _ := e.login(t, keys.Carol, "desk-7", time.Hour)
		c := e.client(t, keys.Carol)
		for _, want := range []struct {
			s     *api.Session
			state string
		}{{first, api.SessionSuperseded}, {other, api.SessionLive}, {second, api.SessionLive}} {
			got, err := c.SessionInfo(context.Background(), want.s.Session)
			if err != nil || got.State != want.state {
				t.Fatalf("%s: %+v %v, want %s", want.s.Session, got, err, want.state)
			}
		}
		// Another consultant cannot see or end it.
		if _, err := e.client(t, daveID).Logout(context.Background(), second.Session); err == nil {
			t.Fatal("dave logged carol out")
		}
		out, err := c.Logout(context.Background(), second.Session)
		if err != nil || out.State != api.SessionLoggedOut {
			t.Fatalf("logout: %+v %v", out, err)
		}
		again, err := c.Logout(context.Background(), second.Session)
		if err != nil || again.State != api.SessionLoggedOut || again.Ended != out.Ended {
			t.Fatalf("second logout: %+v %v", again, err)
		}
	})

	t.Run("a shift longer than the merchant allows is cut to its maximum", func(t *testing.T) {
		s, _ := e.login(t, keys.Carol, "desk-9", 20*time.Hour)
		created, _ := time.Parse(time.RFC3339, s.Created)
		expires, _ := time.Parse(time.RFC3339, s.Expires)
		if d := expires.Sub(created); d != 8*time.Hour {
			t.Fatalf("shift %s, want the 8h maximum", d)
		}
	})
}

func TestAssistedIntake(t *testing.T) {
	e := newEnv(t)
	sess, secret := e.login(t, keys.Carol, "desk-7", time.Hour)
	daveSess, _ := e.login(t, daveID, "desk-1", time.Hour)
	consultantBundle := func(t *testing.T, session string) *order.Bundle {
		return seal(t, keys.Carol, phoneOrder(t), phoneParties, order.SealOptions{Session: session})
	}
	signedBody := func(b *order.Bundle, session, device string, proof api.Sealed, sig []byte) []byte {
		raw, _ := b.MarshalJSON()
		out, _ := json.Marshal(api.AssistedOrder{Bundle: raw, Session: session, Device: device, Proof: proof, DeviceSignature: wire.B64(sig)})
		return out
	}
	submitBody := func(b *order.Bundle, session, device string, proof api.Sealed) []byte {
		return signedBody(b, session, device, proof, deviceSig(t, b, session, device, proof))
	}
	prove := func(t *testing.T, b *order.Bundle, session, device string, secret []byte) api.Sealed {
		p, err := assisted.Prove(keys.Keys(t, keys.Carol), keys.Shop, session, device, secret, b.HeaderHash())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	submitAssisted := func(t *testing.T, b *order.Bundle, session, device string, secret []byte) (*api.Accepted, error) {
		p := prove(t, b, session, device, secret)
		return e.client(t, keys.Carol).SubmitAssisted(context.Background(), b, session, device, p, deviceSig(t, b, session, device, p))
	}
	valid := func(t *testing.T) []byte {
		b := consultantBundle(t, sess.Session)
		return submitBody(b, sess.Session, "desk-7", prove(t, b, sess.Session, "desk-7", secret))
	}
	tests := []struct {
		name   string
		caller string
		path   string
		body   func(t *testing.T) []byte
		status int
		code   string
	}{
		{"a consultant's bundle on the online route", keys.Carol, api.PathOrders, func(t *testing.T) []byte {
			return marshal(t, consultantBundle(t, sess.Session))
		}, http.StatusForbidden, api.CodeNotAssisted},
		{"a cardholder's bundle on the assisted route", keys.Alice, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := seal(t, keys.Alice, phoneOrder(t), phoneParties, order.SealOptions{})
			return submitBody(b, sess.Session, "desk-7", prove(t, b, sess.Session, "desk-7", secret))
		}, http.StatusForbidden, httpsig.CodeForbiddenRole},
		{"signed by another consultant", daveID, api.PathAssistedOrders, valid, http.StatusForbidden, api.CodeCardholderMismatch},
		{"the request names another session than the bundle", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := consultantBundle(t, sess.Session)
			return submitBody(b, daveSess.Session, "desk-7", prove(t, b, daveSess.Session, "desk-7", secret))
		}, http.StatusUnprocessableEntity, api.CodeSessionMismatch},
		{"an unknown session", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			s := "ses_aaaaaaaaaaaaaaaaaaaaaaaaaa"
			b := consultantBundle(t, s)
			return submitBody(b, s, "desk-7", prove(t, b, s, "desk-7", secret))
		}, http.StatusForbidden, api.CodeSessionUnknown},
		{"another consultant's session", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := consultantBundle(t, daveSess.Session)
			return submitBody(b, daveSess.Session, "desk-1", prove(t, b, daveSess.Session, "desk-1", secret))
		}, http.StatusForbidden, api.CodeSessionUnknown},
		{"from another device", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := consultantBundle(t, sess.Session)
			return submitBody(b, sess.Session, "desk-9", prove(t, b, sess.Session, "desk-9", secret))
		}, http.StatusForbidden, api.CodeDeviceMismatch},
		// Issue 16 item 8: the session file and the consultant key copied to
		// another terminal, presenting the same device name: its device key
		// is another, and the merchant refuses what it signs.
		{"signed by another terminal's device key", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := consultantBundle(t, sess.Session)
			p := prove(t, b, sess.Session, "desk-7", secret)
			thief := deviceKey(t, "thief's terminal").SignOrder(keys.Shop, keys.Carol, sess.Session, "desk-7", b.HeaderHash(), p)
			return signedBody(b, sess.Session, "desk-7", p, thief)
		}, http.StatusForbidden, api.CodeDeviceKeyMismatch},
		{"no device signature", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := consultantBundle(t, sess.Session)
			return signedBody(b, sess.Session, "desk-7", prove(t, b, sess.Session, "desk-7", secret), nil)
		}, http.StatusForbidden, api.CodeDeviceKeyMismatch},
		{"a device signature over another proof", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := consultantBundle(t, sess.Session)
			p, q := prove(t, b, sess.Session, "desk-7", secret), prove(t, b, sess.Session, "desk-7", secret)
			return signedBody(b, sess.Session, "desk-7", p, deviceSig(t, b, sess.Session, "desk-7", q))
		}, http.StatusForbidden, api.CodeDeviceKeyMismatch},
		{"a proof made for another bundle", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			other := consultantBundle(t, sess.Session)
			b := consultantBundle(t, sess.Session)
			return submitBody(b, sess.Session, "desk-7", prove(t, other, sess.Session, "desk-7", secret))
		}, http.StatusForbidden, api.CodeProofInvalid},
		{"a proof with a guessed identifier", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := consultantBundle(t, sess.Session)
			return submitBody(b, sess.Session, "desk-7", prove(t, b, sess.Session, "desk-7", make([]byte, api.SecretSize)))
		}, http.StatusForbidden, api.CodeProofInvalid},
		{"a proof with a flipped bit", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			b := consultantBundle(t, sess.Session)
			p := prove(t, b, sess.Session, "desk-7", secret)
			ct, _ := wire.UnB64(p.CT)
			ct[3] ^= 1
			p.CT = wire.B64(ct)
			return submitBody(b, sess.Session, "desk-7", p)
		}, http.StatusForbidden, api.CodeProofInvalid},
		{"no proof", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			return submitBody(consultantBundle(t, sess.Session), sess.Session, "desk-7", api.Sealed{})
		}, http.StatusForbidden, api.CodeProofInvalid},
		{"unknown field", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte {
			return append([]byte(`{"override":true,`), valid(t)[1:]...)
		}, http.StatusBadRequest, "malformed-json"},
		{"not JSON", keys.Carol, api.PathAssistedOrders, func(t *testing.T) []byte { return []byte("card=4111111111111111") }, http.StatusBadRequest, "malformed-json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, h, b := e.signedPost(t, tc.caller, tc.path, tc.body(t))
			problemOf(t, st, h, b, tc.status, tc.code)
			for _, table := range []string{"orders", "timeline", "outbox"} {
				if n := e.count(t, table); n != 0 {
					t.Fatalf("a refused order left %d rows in %s", n, table)
				}
			}
		})
	}

	t.Run("an order in a live session is stored with it and relayed naming it", func(t *testing.T) {
		e.run()
		b := consultantBundle(t, sess.Session)
		acc, err := submitAssisted(t, b, sess.Session, "desk-7", secret)
		if err != nil {
			t.Fatal(err)
		}
		o := e.waitState(t, acc.OrderID, api.StateShipped)
		if o.Session != sess.Session || o.Cardholder != keys.Carol {
			t.Fatalf("stored order: session %q, cardholder %q", o.Session, o.Cardholder)
		}
		reqs, _, errs := e.issuer.snapshot()
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if len(reqs) != 1 || reqs[0].session != sess.Session || reqs[0].section.Session != sess.Session {
			t.Fatalf("issuer requests: %+v", reqs)
		}
		// The consultant can follow it; the same bundle again is the same order.
		if st, err := e.client(t, keys.Carol).Status(context.Background(), acc.OrderID); err != nil || st.State != api.StateShipped {
			t.Fatalf("status: %+v %v", st, err)
		}
		again, err := submitAssisted(t, b, sess.Session, "desk-7", secret)
		if err != nil || again.OrderID != acc.OrderID {
			t.Fatalf("resubmission: %+v %v", again, err)
		}
		if !strings.Contains(string(e.log.Bytes()), `"msg":"assisted order received"`) {
			t.Fatal("no log line for the assisted order")
		}
		if strings.Contains(string(e.log.Bytes()), cardNumber) {
			t.Fatal("the log holds the card number")
		}

		// The audit traces it to consultant, session and device.
		ctx := context.Background()
		code, out, stderr := runCLI(t, ctx, "", "audit", "order", "-db", e.dbPath, acc.OrderID)
		if code != 0 {
			t.Fatalf("audit order: %d %s", code, stderr)
		}
		for _, want := range []string{"assisted", keys.Carol, keys.CallCenter, sess.Session, "desk-7", sess.Created, "bundle stored", "shipped"} {
			if !strings.Contains(out, want) {
				t.Errorf("audit order lacks %q:\n%s", want, out)
			}
		}
		var au merchant.OrderAudit
		code, out, _ = runCLI(t, ctx, "", "audit", "order", "-json", "-db", e.dbPath, acc.OrderID)
		if code != 0 || json.Unmarshal([]byte(out), &au) != nil || au.Channel != "assisted" || au.Session == nil ||
			au.Session.Device != "desk-7" || au.Sealer != keys.Carol || len(au.Timeline) < 3 {
			t.Fatalf("audit order -json: %d %s", code, out)
		}
		code, out, _ = runCLI(t, ctx, "", "audit", "consultant", "-db", e.dbPath, keys.Carol)
		if code != 0 || !strings.Contains(out, "session "+sess.Session) || !strings.Contains(out, "1 orders") || !strings.Contains(out, acc.OrderID) {
			t.Fatalf("audit consultant: %d\n%s", code, out)
		}
		var sas []merchant.SessionAudit
		code, out, _ = runCLI(t, ctx, "", "audit", "consultant", "-json", "-db", e.dbPath, keys.Carol)
		if code != 0 || json.Unmarshal([]byte(out), &sas) != nil || len(sas) != 1 || len(sas[0].Orders) != 1 {
			t.Fatalf("audit consultant -json: %d %s", code, out)
		}
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"audit", "order", "-db", e.dbPath, "ord_nope"}, cli.ExitFailure, "no order"},
			{[]string{"audit", "order", "-db", e.dbPath + ".missing", acc.OrderID}, cli.ExitFailure, "no such file"},
			{[]string{"audit", "consultant", "-db", e.dbPath, keys.Alice}, cli.ExitUsage, "not a consultant identity"},
			{[]string{"audit", "order", acc.OrderID}, cli.ExitUsage, "-db is required"},
		} {
			code, _, errs := runCLI(t, ctx, "", c.args...)
			if code != c.code {
				t.Errorf("%v: exit %d, want %d: %s", c.args, code, c.code, errs)
				continue
			}
			oneLineError(t, errs, "merchant audit", c.want)
		}
		if _, err := os.Stat(e.dbPath + ".missing"); err == nil {
			t.Fatal("audit created a database")
		}
	})

	t.Run("after logout or the shift, the session proves nothing", func(t *testing.T) {
		before := e.count(t, "orders")
		short, shortSecret := e.login(t, keys.Carol, "desk-8", time.Hour)
		e.skew.Store(int64(2 * time.Hour))
		b := consultantBundle(t, short.Session)
		_, err := submitAssisted(t, b, short.Session, "desk-8", shortSecret)
		wantProblem(t, err, http.StatusForbidden, api.CodeSessionExpired)
		e.skew.Store(0)

		if _, err := e.client(t, keys.Carol).Logout(context.Background(), sess.Session); err != nil {
			t.Fatal(err)
		}
		b = consultantBundle(t, sess.Session)
		_, err = submitAssisted(t, b, sess.Session, "desk-7", secret)
		wantProblem(t, err, http.StatusForbidden, api.CodeSessionEnded)
		if n := e.count(t, "orders"); n != before {
			t.Fatalf("%d refused orders stored", n-before)
		}
	})
}
