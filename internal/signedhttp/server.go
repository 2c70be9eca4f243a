package signedhttp

import (
	"log/slog"

	"github.com/labstack/echo/v4"

	"orderseal/internal/web"
	"orderseal/keygen"
)

// NewServer is web.New with every route behind a verifier of keys that
// reads bodies of up to maxBody bytes and logs to logger; extra options
// (tests: clock, nonce store) come after those two.
func NewServer(keys keygen.Keyring, logger *slog.Logger, maxBody int64, extra ...Option) *echo.Echo {
	opts := append([]Option{WithMaxBody(maxBody), WithLogger(logger)}, extra...)
	e := web.New(logger)
	e.Use(NewVerifier(keys, opts...).Middleware())
	return e
}
