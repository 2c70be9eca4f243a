package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	outboxsql "orderseal/internal/outbox/sqlite"
)

// AddEvent records the shipment's next event and sets its status, and in
// the same transaction enqueues the job that posts the event to the
// merchant, so an acknowledged event is always delivered. A status change
// that makes no sense (see Allowed) is ErrTransition.
func (s *Store) AddEvent(ctx context.Context, tracking, status, note string) (store.Event, error) {
	if err := store.CheckEvent(status, note); err != nil {
		return store.Event{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Event{}, err
	}
	defer tx.Rollback()
	sh, err := scanShipment(tx.QueryRowContext(ctx, selectShipment+` WHERE tracking = ?`, strings.ToUpper(tracking)))
	if err != nil {
		return store.Event{}, err
	}
	if !store.Allowed(sh.Status, status) {
		return store.Event{}, fmt.Errorf("%w: %s is %s; it can go to %v", store.ErrTransition, tracking, sh.Status, store.NextStatuses(sh.Status))
	}
	ev, err := s.addEvent(ctx, tx, sh, status, note)
	if err != nil {
		return store.Event{}, err
	}
	if err := tx.Commit(); err != nil {
		return store.Event{}, err
	}
	return ev, nil
}

// addEvent records sh's next event and status in tx, with the job that
// posts the event to the merchant.
func (s *Store) addEvent(ctx context.Context, tx *sql.Tx, sh store.Shipment, status, note string) (store.Event, error) {
	ev := store.Event{Tracking: sh.Tracking, Status: status, At: s.now().UTC().Truncate(time.Second), Note: note}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE tracking = ?`, sh.Tracking).Scan(&ev.Seq); err != nil {
		return store.Event{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (tracking, seq, status, at, note) VALUES (?, ?, ?, ?, ?)`,
		ev.Tracking, ev.Seq, ev.Status, ev.At.Format(store.TimeLayout), ev.Note); err != nil {
		return store.Event{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE shipments SET status = ? WHERE tracking = ?`, status, sh.Tracking); err != nil {
		return store.Event{}, err
	}
	payload, err := store.DeliveryPayload(sh.Merchant, sh.EventsURL, ev.Wire(sh.OrderID))
	if err != nil {
		return store.Event{}, err
	}
	key := sh.Tracking + "/" + strconv.FormatInt(ev.Seq, 10)
	if err := outboxsql.Enqueue(ctx, tx, store.JobTrackingEvent, key, payload, s.now()); err != nil {
		return store.Event{}, err
	}
	return ev, nil
}

// Cancel cancels merchant's booking for orderID while it is booked, with
// its cancelled event and that event's delivery job, in one transaction.
func (s *Store) Cancel(ctx context.Context, merchant, orderID string) (store.Shipment, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Shipment{}, false, err
	}
	defer tx.Rollback()
	sh, err := scanShipment(tx.QueryRowContext(ctx, selectShipment+` WHERE merchant = ? AND order_id = ?`, merchant, orderID))
	if err != nil {
		return store.Shipment{}, false, err
	}
	switch sh.Status {
	case api.StatusCancelled:
		return sh, false, nil
	case api.StatusBooked:
	default:
		return store.Shipment{}, false, fmt.Errorf("%w (%s is %s)", store.ErrParcelLeft, sh.Tracking, sh.Status)
	}
	if _, err := s.addEvent(ctx, tx, sh, api.StatusCancelled, store.CancelNote); err != nil {
		return store.Shipment{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return store.Shipment{}, false, err
	}
	sh.Status = api.StatusCancelled
	return sh, true, nil
}

// Events returns a shipment's events in order, with each one's delivery
// state in the outbox ("pending", "done", "failed").
func (s *Store) Events(ctx context.Context, tracking string) ([]store.Event, []string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e.tracking, e.seq, e.status, e.at, e.note, COALESCE(o.state, '')
		FROM events e LEFT JOIN outbox o ON o.kind = ? AND o.key = e.tracking || '/' || e.seq
		WHERE e.tracking = ? ORDER BY e.seq`, store.JobTrackingEvent, strings.ToUpper(tracking))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var evs []store.Event
	var states []string
	for rows.Next() {
		var ev store.Event
		var at, state string
		if err := rows.Scan(&ev.Tracking, &ev.Seq, &ev.Status, &at, &ev.Note, &state); err != nil {
			return nil, nil, err
		}
		if ev.At, err = time.Parse(store.TimeLayout, at); err != nil {
			return nil, nil, fmt.Errorf("carrier: event %s/%d: corrupt time", ev.Tracking, ev.Seq)
		}
		evs = append(evs, ev)
		states = append(states, state)
	}
	return evs, states, rows.Err()
}
