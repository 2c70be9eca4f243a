package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/outbox/sqlout"
	"orderseal/internal/sqldb"
)

// AddEvent records the shipment's next event and sets its status, the
// shipment's row locked, and in the same transaction enqueues the job that
// posts the event to the merchant, so an acknowledged event is always
// delivered. A status change that makes no sense (see store.Allowed) is
// store.ErrTransition.
func (s *Store) AddEvent(ctx context.Context, tracking, status, note string) (ev store.Event, err error) {
	if err := store.CheckEvent(status, note); err != nil {
		return store.Event{}, err
	}
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		sh, err := scanShipment(tx.QueryRow(ctx, selectShipment+` WHERE tracking = $1`+sqldb.ForUpdate(tx), strings.ToUpper(tracking)))
		if err != nil {
			return err
		}
		if !store.Allowed(sh.Status, status) {
			return fmt.Errorf("%w: %s is %s; it can go to %v", store.ErrTransition, tracking, sh.Status, store.NextStatuses(sh.Status))
		}
		ev, err = s.addEvent(ctx, tx, sh, status, note)
		return err
	})
	if err != nil {
		return store.Event{}, err
	}
	return ev, nil
}

// addEvent records sh's next event and status in tx, with the job that
// posts the event to the merchant; sh's row is locked, so the next seq is
// no other transaction's.
func (s *Store) addEvent(ctx context.Context, tx sqldb.Tx, sh store.Shipment, status, note string) (store.Event, error) {
	ev := store.Event{Tracking: sh.Tracking, Status: status, At: s.now().UTC().Truncate(time.Second), Note: note}
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE tracking = $1`, sh.Tracking).Scan(&ev.Seq); err != nil {
		return store.Event{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (tracking, seq, status, at, note) VALUES ($1, $2, $3, $4, $5)`,
		ev.Tracking, ev.Seq, ev.Status, ev.At.Format(store.TimeLayout), ev.Note); err != nil {
		return store.Event{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE shipments SET status = $1 WHERE tracking = $2`, status, sh.Tracking); err != nil {
		return store.Event{}, err
	}
	payload, err := store.DeliveryPayload(sh.Merchant, sh.EventsURL, ev.Wire(sh.OrderID))
	if err != nil {
		return store.Event{}, err
	}
	key := sh.Tracking + "/" + strconv.FormatInt(ev.Seq, 10)
	if err := sqlout.Enqueue(ctx, tx, store.JobTrackingEvent, key, payload, s.now()); err != nil {
		return store.Event{}, err
	}
	return ev, nil
}

// Cancel cancels merchant's booking for orderID while it is booked, its
// row locked, with its cancelled event and that event's delivery job, in
// one transaction.
func (s *Store) Cancel(ctx context.Context, merchant, orderID string) (sh store.Shipment, changed bool, err error) {
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		var err error
		sh, err = scanShipment(tx.QueryRow(ctx, selectShipment+` WHERE merchant = $1 AND order_id = $2`+sqldb.ForUpdate(tx), merchant, orderID))
		if err != nil {
			return err
		}
		switch sh.Status {
		case api.StatusCancelled:
			return nil
		case api.StatusBooked:
		default:
			return fmt.Errorf("%w (%s is %s)", store.ErrParcelLeft, sh.Tracking, sh.Status)
		}
		if _, err := s.addEvent(ctx, tx, sh, api.StatusCancelled, store.CancelNote); err != nil {
			return err
		}
		sh.Status, changed = api.StatusCancelled, true
		return nil
	})
	if err != nil {
		return store.Shipment{}, false, err
	}
	return sh, changed, nil
}

// Events returns a shipment's events in order, with each one's delivery
// state in the outbox ("pending", "done", "failed").
func (s *Store) Events(ctx context.Context, tracking string) ([]store.Event, []string, error) {
	var evs []store.Event
	var states []string
	err := sqldb.Each(ctx, s.db, func(r sqldb.Row) error {
		var ev store.Event
		var at, state string
		if err := r.Scan(&ev.Tracking, &ev.Seq, &ev.Status, &at, &ev.Note, &state); err != nil {
			return err
		}
		var err error
		if ev.At, err = time.Parse(store.TimeLayout, at); err != nil {
			return fmt.Errorf("carrier: event %s/%d: corrupt time", ev.Tracking, ev.Seq)
		}
		evs = append(evs, ev)
		states = append(states, state)
		return nil
	}, `SELECT e.tracking, e.seq, e.status, e.at, e.note, COALESCE(o.state, '')
		FROM events e LEFT JOIN outbox o ON o.kind = $1 AND o.key = e.tracking || '/' || e.seq
		WHERE e.tracking = $2 ORDER BY e.seq`, store.JobTrackingEvent, strings.ToUpper(tracking))
	if err != nil {
		return nil, nil, err
	}
	return evs, states, nil
}
