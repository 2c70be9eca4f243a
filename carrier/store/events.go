package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"orderseal/carrier/api"
	outboxsql "orderseal/internal/outbox/sqlite"
)

// MaxNoteLen bounds an event's note (api.TrackingEvent allows 200 bytes).
const MaxNoteLen = 200

// Event is one step in a shipment's history. Seq counts from 1 per shipment.
type Event struct {
	Tracking string
	Seq      int64
	Status   string
	At       time.Time // UTC, whole seconds
	Note     string
}

// next lists the statuses a shipment may move to from each status. A
// parcel can be scanned in transit at several hubs, fail and be retried,
// and be sent back at any point until delivered; once delivered it can only
// come back (returned), and a returned parcel's history is closed.
var next = map[string][]string{
	api.StatusBooked:         {api.StatusPickedUp, api.StatusInTransit, api.StatusException, api.StatusReturned},
	api.StatusPickedUp:       {api.StatusInTransit, api.StatusOutForDelivery, api.StatusException, api.StatusReturned},
	api.StatusInTransit:      {api.StatusInTransit, api.StatusOutForDelivery, api.StatusDelivered, api.StatusException, api.StatusReturned},
	api.StatusOutForDelivery: {api.StatusInTransit, api.StatusDelivered, api.StatusException, api.StatusReturned},
	api.StatusException:      {api.StatusPickedUp, api.StatusInTransit, api.StatusOutForDelivery, api.StatusDelivered, api.StatusException, api.StatusReturned},
	api.StatusDelivered:      {api.StatusReturned},
	api.StatusReturned:       nil,
}

// Allowed reports whether a shipment in status from may move to status to.
func Allowed(from, to string) bool { return slices.Contains(next[from], to) }

// NextStatuses lists where a shipment in status from may go.
func NextStatuses(from string) []string { return slices.Clone(next[from]) }

// deliveryJob is the outbox payload of JobTrackingEvent: everything the
// runner needs to post the event, so delivery never reads the shipment.
type deliveryJob struct {
	Merchant  string            `json:"merchant"`
	EventsURL string            `json:"events_url"`
	Event     api.TrackingEvent `json:"event"`
}

// Delivery is a decoded JobTrackingEvent payload.
type Delivery struct {
	Merchant  string
	EventsURL string
	Event     api.TrackingEvent
}

// ParseDelivery decodes a JobTrackingEvent payload.
func ParseDelivery(payload []byte) (Delivery, error) {
	var j deliveryJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return Delivery{}, fmt.Errorf("carrier: tracking event job: %w", err)
	}
	if j.Merchant == "" || j.EventsURL == "" || j.Event.Tracking == "" || j.Event.Seq < 1 {
		return Delivery{}, fmt.Errorf("carrier: tracking event job is incomplete")
	}
	return Delivery(j), nil
}

func checkNote(note string) error {
	if len(note) > MaxNoteLen || !utf8.ValidString(note) {
		return fmt.Errorf("%w: note must be valid UTF-8 of at most %d bytes", ErrInvalid, MaxNoteLen)
	}
	for _, r := range note {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: note must be one line of text", ErrInvalid)
		}
	}
	return nil
}

// AddEvent records the shipment's next event and sets its status, and in
// the same transaction enqueues the job that posts the event to the
// merchant, so an acknowledged event is always delivered. A status change
// that makes no sense (see Allowed) is ErrTransition.
func (s *Store) AddEvent(ctx context.Context, tracking, status, note string) (Event, error) {
	if !slices.Contains(api.EventStatuses, status) {
		return Event{}, fmt.Errorf("%w: unknown status %q", ErrInvalid, status)
	}
	if err := checkNote(note); err != nil {
		return Event{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Event{}, err
	}
	defer tx.Rollback()
	sh, err := scanShipment(tx.QueryRowContext(ctx, selectShipment+` WHERE tracking = ?`, strings.ToUpper(tracking)))
	if err != nil {
		return Event{}, err
	}
	if !Allowed(sh.Status, status) {
		return Event{}, fmt.Errorf("%w: %s is %s; it can go to %v", ErrTransition, tracking, sh.Status, next[sh.Status])
	}
	ev := Event{Tracking: sh.Tracking, Status: status, At: s.now().UTC().Truncate(time.Second), Note: note}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE tracking = ?`, sh.Tracking).Scan(&ev.Seq); err != nil {
		return Event{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (tracking, seq, status, at, note) VALUES (?, ?, ?, ?, ?)`,
		ev.Tracking, ev.Seq, ev.Status, ev.At.Format(TimeLayout), ev.Note); err != nil {
		return Event{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE shipments SET status = ? WHERE tracking = ?`, status, sh.Tracking); err != nil {
		return Event{}, err
	}
	payload, err := json.Marshal(deliveryJob{Merchant: sh.Merchant, EventsURL: sh.EventsURL, Event: ev.Wire(sh.OrderID)})
	if err != nil {
		return Event{}, err
	}
	key := sh.Tracking + "/" + strconv.FormatInt(ev.Seq, 10)
	if err := outboxsql.Enqueue(ctx, tx, JobTrackingEvent, key, payload, s.now()); err != nil {
		return Event{}, err
	}
	if err := tx.Commit(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// Wire is the event as posted to the merchant.
func (ev Event) Wire(orderID string) api.TrackingEvent {
	return api.TrackingEvent{OrderID: orderID, Tracking: ev.Tracking, Seq: ev.Seq, Status: ev.Status,
		At: ev.At.Format(TimeLayout), Note: ev.Note}
}

// Events returns a shipment's events in order, with each one's delivery
// state in the outbox ("pending", "done", "failed").
func (s *Store) Events(ctx context.Context, tracking string) ([]Event, []string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e.tracking, e.seq, e.status, e.at, e.note, COALESCE(o.state, '')
		FROM events e LEFT JOIN outbox o ON o.kind = ? AND o.key = e.tracking || '/' || e.seq
		WHERE e.tracking = ? ORDER BY e.seq`, JobTrackingEvent, strings.ToUpper(tracking))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var evs []Event
	var states []string
	for rows.Next() {
		var ev Event
		var at, state string
		if err := rows.Scan(&ev.Tracking, &ev.Seq, &ev.Status, &at, &ev.Note, &state); err != nil {
			return nil, nil, err
		}
		if ev.At, err = time.Parse(TimeLayout, at); err != nil {
			return nil, nil, fmt.Errorf("carrier: event %s/%d: corrupt time", ev.Tracking, ev.Seq)
		}
		evs = append(evs, ev)
		states = append(states, state)
	}
	return evs, states, rows.Err()
}
