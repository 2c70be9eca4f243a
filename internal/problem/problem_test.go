package problem

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem/rfc9457"
)

func TestProblemError(t *testing.T) {
	cause := errors.New("row locked")
	p := New(http.StatusConflict, "order-conflict", "Order conflict", "The order is already settled.").WithInternal(cause)
	if got := p.Error(); got != "order-conflict (409): The order is already settled." {
		t.Fatalf("Error() = %q", got)
	}
	if p.Type != "https://orderseal.dev/problems/order-conflict" || !errors.Is(p, cause) {
		t.Fatalf("%+v", p)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("malformed code accepted")
		}
	}()
	New(400, "Bad Code", "", "")
}

func TestErrorHandler(t *testing.T) {
	var logs bytes.Buffer
	e := echo.New()
	e.HTTPErrorHandler = ErrorHandler(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e.POST("/bind", func(c echo.Context) error {
		var v struct{ N int }
		return c.Bind(&v)
	})
	// What echo's BodyLimit middleware returns (the middleware package would add a module).
	e.POST("/small", func(c echo.Context) error { return echo.ErrStatusRequestEntityTooLarge })
	e.GET("/problem", func(c echo.Context) error {
		return New(http.StatusConflict, "order-conflict", "Order conflict", "Settled.").WithInternal(errors.New("row 17"))
	})
	e.GET("/boom", func(c echo.Context) error { return errors.New("dsn password=hunter2") })

	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/problem", "", 409, "order-conflict"},
		{"GET", "/nowhere", "", 404, CodeNotFound},
		{"DELETE", "/problem", "", 405, CodeMethodNotAllowed},
		{"POST", "/small", "0123456789abcdef", 413, CodeBodyTooLarge},
		{"POST", "/bind", `{"N":"secret-card-4111"}`, 400, CodeBadRequest},
		{"POST", "/bind", `{"N": 4111x`, 400, CodeBadRequest},
		{"GET", "/boom", "", 500, CodeInternal},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Header().Get("Content-Type") != ContentType || rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("headers %v", rec.Header())
			}
			p, err := rfc9457.Decode(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.status || p.Status != tc.status || p.Code != tc.code || p.Title == "" {
				t.Fatalf("got %d %+v, want %d %s", rec.Code, p, tc.status, tc.code)
			}
			for _, leak := range []string{"hunter2", "row 17", "4111", "secret"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Fatalf("response leaks %q: %s", leak, rec.Body)
				}
			}
		})
	}
	// The real error reaches the log, apart from the response.
	if !strings.Contains(logs.String(), "hunter2") || !strings.Contains(logs.String(), "row 17") {
		t.Fatalf("internal causes not logged:\n%s", logs.String())
	}
}

func TestDecodeRefusesJunk(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"code":""}`, `{"code":"Not A Code"}`, `{"status":500}`} {
		if _, err := rfc9457.Decode([]byte(body)); err == nil {
			t.Errorf("Decode(%s) accepted", body)
		}
	}
	b, _ := json.Marshal(New(401, "clock-skew", "Clock skew", ""))
	if p, err := rfc9457.Decode(b); err != nil || p.Code != "clock-skew" || strings.Contains(string(b), "detail") {
		t.Fatalf("%s: %+v %v", b, p, err)
	}
}
