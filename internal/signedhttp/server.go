package signedhttp

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/apiroute"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/web"
	"orderseal/keygen"
)

// NewServer is web.New with every route behind a verifier of keys that
// reads bodies of up to maxBody bytes and logs to logger; extra options
// (tests: clock, nonce store) come after those two. It serves the party's
// own directory entries (httpsig.DirectoryPath) to merchants, when keys
// holds any (keygen.Directory).
func NewServer(keys keygen.Keyring, logger *slog.Logger, maxBody int64, extra ...Option) *echo.Echo {
	opts := append([]Option{WithMaxBody(maxBody), WithLogger(logger)}, extra...)
	e := web.New(logger)
	e.Use(NewVerifier(keys, opts...).Middleware())
	e.GET(httpsig.DirectoryPath, func(c echo.Context) error {
		d := httpsig.Directory{Entries: []*keygen.DirectoryEntry{}}
		if dir, ok := keys.(keygen.Directory); ok {
			d.Entries = append(d.Entries, dir.Entries()...)
		}
		return c.JSON(http.StatusOK, d)
	}, Allow(keygen.RoleMerchant))
	return e
}

// DirectoryRoute is the directory NewServer serves, for the route table of
// a party of role.
func DirectoryRoute(role keygen.Role) apiroute.Route {
	return apiroute.Route{Method: http.MethodGet, Path: httpsig.DirectoryPath,
		Summary: "The " + string(role) + "'s own directory entries (its epoch KEM keys, certified by the key center)",
		Callers: []keygen.Role{keygen.RoleMerchant}, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &httpsig.Directory{}}},
		Problems: apiroute.SignedProblems}
}

// PartyServer is what the issuer's, the carrier's and the vault's servers
// are built on: their routes behind the verifier (NewServer), and the
// logger and clock of their options with the defaults filled.
type PartyServer struct {
	Echo   *echo.Echo
	Logger *slog.Logger     // the options' logger; nil there: one that discards
	Now    func() time.Time // the options' clock; nil there: time.Now
}

// NewPartyServer is NewServer for a party whose store keeps the replay
// memory: nonces, durable and shared by every process serving from that
// store, which extra (tests) may replace.
func NewPartyServer(keys keygen.Keyring, nonces NonceStore, maxBody int64, logger *slog.Logger, now func() time.Time, extra ...Option) PartyServer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	opts := append([]Option{WithNonceStore(nonces)}, extra...)
	return PartyServer{Echo: NewServer(keys, logger, maxBody, opts...), Logger: logger, Now: now}
}
