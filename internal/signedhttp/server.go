package signedhttp

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

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
