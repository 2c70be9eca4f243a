package label

import (
	"time"

	"orderseal/carrier/api"
	"orderseal/order"
)

// labelJSON is a label vector as testdata/labels.json writes it.
type labelJSON struct {
	Carrier   string            `json:"carrier"`
	Service   string            `json:"service"`
	Sender    order.Address     `json:"sender"`
	Recipient string            `json:"recipient"`
	Phone     string            `json:"phone"`
	Address   order.Address     `json:"address"`
	Tracking  string            `json:"tracking"`
	OrderID   string            `json:"order_id"`
	Booked    time.Time         `json:"booked"`
	WeightG   int               `json:"weight_g"`
	Pieces    int               `json:"pieces"`
	GiftNote  string            `json:"gift_note"`
	Policy    string            `json:"policy"`
	Category  string            `json:"category"`
	Contents  []api.CustomsItem `json:"contents"`
}

func (j labelJSON) Label() Label {
	return Label{Carrier: j.Carrier, Service: j.Service, Sender: j.Sender, Recipient: j.Recipient, Phone: j.Phone,
		Address: j.Address, Tracking: j.Tracking, OrderID: j.OrderID, Booked: j.Booked, WeightG: j.WeightG,
		Pieces: j.Pieces, GiftNote: j.GiftNote, Policy: j.Policy, Category: j.Category, Contents: j.Contents}
}
