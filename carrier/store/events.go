package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"orderseal/carrier/api"
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
// come back (returned), and a returned parcel's history is closed, as is a
// cancelled booking's.
var next = map[string][]string{
	api.StatusBooked:         {api.StatusPickedUp, api.StatusInTransit, api.StatusException, api.StatusReturned},
	api.StatusPickedUp:       {api.StatusInTransit, api.StatusOutForDelivery, api.StatusException, api.StatusReturned},
	api.StatusInTransit:      {api.StatusInTransit, api.StatusOutForDelivery, api.StatusDelivered, api.StatusException, api.StatusReturned},
	api.StatusOutForDelivery: {api.StatusInTransit, api.StatusDelivered, api.StatusException, api.StatusReturned},
	api.StatusException:      {api.StatusPickedUp, api.StatusInTransit, api.StatusOutForDelivery, api.StatusDelivered, api.StatusException, api.StatusReturned},
	api.StatusDelivered:      {api.StatusReturned},
	api.StatusReturned:       nil,
	api.StatusCancelled:      nil, // set by Cancel only, from booked
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

// DeliveryPayload is the JobTrackingEvent payload that posts ev to merchant
// at eventsURL.
func DeliveryPayload(merchant, eventsURL string, ev api.TrackingEvent) ([]byte, error) {
	return json.Marshal(deliveryJob{Merchant: merchant, EventsURL: eventsURL, Event: ev})
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

// CheckEvent refuses an unknown status or a note that is not one short
// line of text (ErrInvalid).
func CheckEvent(status, note string) error {
	if !slices.Contains(api.EventStatuses, status) {
		return fmt.Errorf("%w: unknown status %q", ErrInvalid, status)
	}
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

// Wire is the event as posted to the merchant.
func (ev Event) Wire(orderID string) api.TrackingEvent {
	return api.TrackingEvent{OrderID: orderID, Tracking: ev.Tracking, Seq: ev.Seq, Status: ev.Status,
		At: ev.At.Format(TimeLayout), Note: ev.Note}
}
