package carrier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"orderseal/carrier/store"
	"orderseal/internal/outbox"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
)

// DefaultEventPoll is how often the daemon looks for tracking events the
// event command recorded (the command writes the database, not the daemon).
const DefaultEventPoll = 500 * time.Millisecond

// EventHandler is the outbox handler that posts one tracking event to the
// events URL merchants configures for the shipment's merchant, signed with
// K(carrier, merchant). The URL a job recorded is not used: jobs queued
// before this rule carry URLs a booking request chose. A merchant no longer
// configured is a permanent failure. A 2xx answer is
// delivery; a 4xx other than 408 and 429 is a refusal that retrying cannot
// change (outbox.Permanent); anything else, network errors and unsigned or
// forged answers included, is retried.
func EventHandler(keys keygen.Keyring, merchants Merchants, hc *http.Client, logger *slog.Logger) outbox.Handler {
	client := httpsig.NewClient(keys, hc)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, job outbox.Job) error {
		d, err := store.ParseDelivery(job.Payload)
		if err != nil {
			return outbox.Permanent(err)
		}
		target, ok := merchants.EventsURL(d.Merchant, d.Event.OrderID)
		if !ok {
			return outbox.Permanent(fmt.Errorf("no events URL configured for %s", d.Merchant))
		}
		err = client.DoJSON(ctx, d.Merchant, http.MethodPost, target, d.Event, nil)
		if err == nil {
			logger.Info("tracking event delivered", "tracking", d.Event.Tracking, "seq", d.Event.Seq,
				"status", d.Event.Status, "merchant", d.Merchant)
			return nil
		}
		var p *rfc9457.Problem
		if errors.As(err, &p) && p.Status >= 400 && p.Status < 500 &&
			p.Status != http.StatusRequestTimeout && p.Status != http.StatusTooManyRequests {
			return outbox.Permanent(fmt.Errorf("%s refused tracking event %s/%d: %w", d.Merchant, d.Event.Tracking, d.Event.Seq, err))
		}
		return fmt.Errorf("posting tracking event %s/%d to %s: %w", d.Event.Tracking, d.Event.Seq, d.Merchant, err)
	}
}

// Delivery keeps trying for about a day (the first retries come quickly,
// then every EventMaxBackoff) before an event is given up, so a merchant's
// outage of hours loses nothing.
const (
	EventMaxAttempts = 300
	EventMaxBackoff  = 5 * time.Minute
)

// NewRunner returns the outbox runner that delivers st's tracking events.
// Callers may tune its fields before Run.
func NewRunner(keys keygen.Keyring, st store.Reader, merchants Merchants, hc *http.Client, logger *slog.Logger) *outbox.Runner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &outbox.Runner{
		Store:       st.Outbox(),
		Handlers:    map[string]outbox.Handler{store.JobTrackingEvent: EventHandler(keys, merchants, hc, logger)},
		Poll:        DefaultEventPoll,
		MaxAttempts: EventMaxAttempts,
		MaxBackoff:  EventMaxBackoff,
		Logger:      logger,
		GiveUp: func(ctx context.Context, job outbox.Job, err error) {
			logger.Error("tracking event not delivered", "key", job.Key, "attempts", job.Attempts, "err", err)
		},
	}
}
