// Package label draws shipping labels a carrier can use (DESIGN.md §6.9):
// a 4 × 6 inch label at 203 dpi with the sender and return block, the
// service, weight and piece count, a routing code, the recipient's address
// in the destination's own line order and script (CJK in Noto Sans CJK,
// found at run time), the recipient's phone, an ECC 200 Data Matrix, the
// UPU S10 tracking number as Code 128 and in print, the gift note, and on
// an international parcel the country line and the CN22 customs
// declaration. It writes PNG (with its DPI), PDF and ZPL. Nothing is stored:
// the caller writes the bytes where the operator says.
package label

import (
	"errors"
	"fmt"
	"image"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/currency"

	"orderseal/carrier/api"
	"orderseal/order"
	"orderseal/order/address"
)

// Geometry: a 4 × 6 inch thermal label at 203 dpi.
const (
	DPI    = 203
	Width  = 812  // 4 in
	Height = 1218 // 6 in
	margin = 20
)

// Areas the tests read back.
var (
	// BarcodeArea holds the Code 128 symbol of the tracking number, quiet zones included.
	BarcodeArea = image.Rect(32, 740, Width-32, 868)
	// DataMatrixArea holds the Data Matrix.
	DataMatrixArea = image.Rect(604, 336, 780, 512)
	// AddressArea holds the recipient block.
	AddressArea = image.Rect(32, 342, 584, 640)
)

// Label is what a shipping label shows. Address and Phone are revealed by
// the vault for the moment of printing and are stored nowhere.
type Label struct {
	Carrier   string        // carrier identity, in the header
	Service   string        // "" : "Standard"
	SenderID  string        // the merchant's identity, when Sender is zero
	Sender    order.Address // the ship-from and return address; zero: none declared
	Recipient string        // the name on the parcel; may be ""
	Phone     string        // the recipient's phone, E.164; may be ""
	Address   order.Address
	Tracking  string // UPU S10
	OrderID   string
	Booked    time.Time
	WeightG   int // 0: not declared
	Pieces    int // 0: 1
	GiftNote  string
	Policy    string // the section policy the bundle named
	// Contents and Category are the CN22 declaration, printed when the
	// parcel leaves its origin country.
	Contents []api.CustomsItem
	Category string
}

// Origin is the country the parcel is posted in: the sender's, else the
// tracking number's S10 country.
func (l *Label) Origin() string {
	if l.Sender.Country != "" {
		return l.Sender.Country
	}
	if len(l.Tracking) == api.TrackingLen {
		return l.Tracking[11:]
	}
	return ""
}

// International reports whether the parcel crosses a border.
func (l *Label) International() bool { return l.Origin() != l.Address.Country }

// RoutingCode is the sorting code printed in the routing box: the
// destination country and the part of its postcode that names the sorting
// area (KR, JP, US: 3 digits; CN 4; DE the 2-digit Leitregion; GB the
// outward code; elsewhere the first 3 characters).
func RoutingCode(a order.Address) string {
	pc := strings.ReplaceAll(strings.ToUpper(a.PostalCode), "-", "")
	var area string
	switch a.Country {
	case "GB":
		area, _, _ = strings.Cut(strings.ToUpper(a.PostalCode), " ")
	case "DE":
		area = prefix(pc, 2)
	case "CN":
		area = prefix(pc, 4)
	default:
		area = prefix(strings.ReplaceAll(pc, " ", ""), 3)
	}
	if area == "" {
		return a.Country
	}
	return a.Country + "-" + area
}

func prefix(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// spacedTracking is the human-readable form of an S10 number: OS 123 456 785 DE.
func spacedTracking(t string) string {
	if len(t) != api.TrackingLen {
		return t
	}
	return t[:2] + " " + t[2:5] + " " + t[5:8] + " " + t[8:11] + " " + t[11:]
}

// kg formats grams as kilograms with two decimals.
func kg(g int) string {
	return strconv.FormatFloat(float64(g)/1000, 'f', 2, 64) + " kg"
}

// money formats minor units of an ISO 4217 currency with its decimals.
func money(minor int64, code string) string {
	scale := 2
	if u, err := currency.ParseISO(code); err == nil {
		scale, _ = currency.Standard.Rounding(u)
	}
	neg := minor < 0
	if neg {
		minor = -minor
	}
	s := strconv.FormatInt(minor, 10)
	if scale > 0 {
		for len(s) <= scale {
			s = "0" + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return code + " " + s
}

// Errors of a label that cannot be drawn.
var ErrLabel = errors.New("label: cannot draw")

// layout lays out l on a sheet.
func layout(l Label) (*sheet, error) {
	if err := api.ValidateTracking(l.Tracking); err != nil {
		return nil, err
	}
	if l.Address.Country == "" {
		return nil, fmt.Errorf("%w: the address names no country", ErrLabel)
	}
	s := newSheet(Width, Height, l.Address.Country)
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	x0, x1 := 32, Width-32
	s.box(image.Rect(margin, margin, Width-margin, Height-margin), 3)

	// Header: carrier and service; pieces and weight.
	service := l.Service
	if service == "" {
		service = "Standard"
	}
	if _, err := s.text(l.Carrier, true, 26, 14, x0, 60, 500, "the carrier's identity"); err != nil {
		return nil, err
	}
	if _, err := s.text(service, false, 24, 14, x0, 100, 500, "the service"); err != nil {
		return nil, err
	}
	pieces := max(l.Pieces, 1)
	if err := s.right(fmt.Sprintf("1/%d", pieces), true, 40, x1, 66, "the piece count"); err != nil {
		return nil, err
	}
	if l.WeightG > 0 {
		if err := s.right(kg(l.WeightG), false, 24, x1, 102, "the weight"); err != nil {
			return nil, err
		}
	}
	s.fill(image.Rect(margin, 118, Width-margin, 121))

	// Sender and return block; routing.
	if _, err := s.text("FROM / RETURN TO", true, 16, 16, x0, 146, 500, "a heading"); err != nil {
		return nil, err
	}
	var from []line
	if l.Sender.Country != "" {
		b := address.Layout(l.Sender, l.Sender.Name, l.Address.Country)
		for _, t := range b.Lines {
			from = append(from, line{s: t})
		}
	} else {
		from = []line{{s: l.SenderID}}
	}
	if err := s.block(from, image.Rect(x0, 154, 540, 296), 22, 14, "the sender's address"); err != nil {
		return nil, err
	}
	s.fill(image.Rect(552, 121, 555, 300))
	if _, err := s.text("ROUTING", true, 16, 16, 568, 146, 210, "a heading"); err != nil {
		return nil, err
	}
	if err := s.centred(RoutingCode(l.Address), true, 50, 560, x1, 218, "the routing code"); err != nil {
		return nil, err
	}
	scope := "DOMESTIC"
	if l.International() {
		scope = "INTERNATIONAL"
	}
	if err := s.centred(scope, false, 20, 560, x1, 276, "the scope"); err != nil {
		return nil, err
	}
	s.fill(image.Rect(margin, 298, Width-margin, 301))

	// Recipient block, phone, Data Matrix, gift note.
	if _, err := s.text("TO", true, 18, 18, x0, 328, 100, "a heading"); err != nil {
		return nil, err
	}
	b := address.Layout(l.Address, l.Recipient, l.Origin())
	var to []line
	for i, t := range b.Lines {
		to = append(to, line{s: t, bold: i == b.Name})
	}
	if err := s.block(to, AddressArea, 40, 18, "the recipient's name or address"); err != nil {
		return nil, err
	}
	if l.Phone != "" {
		if _, err := s.text("Tel. "+address.FormatPhone(l.Phone), true, 26, 16, x0, 672, 560, "the recipient's phone"); err != nil {
			return nil, err
		}
	}
	dm := "S10:" + l.Tracking + "|RT:" + RoutingCode(l.Address) + "|ORD:" + l.OrderID
	if l.WeightG > 0 {
		dm += "|W:" + strconv.Itoa(l.WeightG)
	}
	s.dataMatrix(dm, DataMatrixArea)
	if l.GiftNote != "" {
		note := strings.Join(strings.Fields(l.GiftNote), " ")
		if _, err := s.text("Gift note: "+note, false, 18, 14, x0, 706, x1-x0, "the gift note"); err != nil {
			return nil, err
		}
	}
	s.fill(image.Rect(margin, 718, Width-margin, 721))

	// Tracking number.
	s.code128(l.Tracking, BarcodeArea)
	if err := s.centred(spacedTracking(l.Tracking), true, 38, x0, x1, 910, "the tracking number"); err != nil {
		return nil, err
	}
	s.fill(image.Rect(margin, 928, Width-margin, 931))

	if l.International() {
		if err := s.cn22(l, x0, x1); err != nil {
			return nil, err
		}
	} else if err := s.domestic(l, x0, x1); err != nil {
		return nil, err
	}
	foot := "order " + l.OrderID
	if l.Policy != "" {
		foot += "  ·  policy " + l.Policy
	}
	if !l.Booked.IsZero() {
		foot += "  ·  booked " + l.Booked.UTC().Format("2006-01-02")
	}
	if err := s.centred(foot, false, 16, x0, x1, Height-margin-12, "the footer"); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// cn22 is the customs declaration of an international parcel.
func (s *sheet) cn22(l Label, x0, x1 int) error {
	if _, err := s.text("CUSTOMS DECLARATION   CN 22", true, 22, 16, x0, 958, 520, "a heading"); err != nil {
		return err
	}
	if err := s.right("May be opened officially", false, 14, x1, 958, "a heading"); err != nil {
		return err
	}
	cat := l.Category
	if cat == "" {
		cat = "merchandise"
	}
	var boxes []string
	for _, c := range []struct{ key, name string }{{"gift", "Gift"}, {"documents", "Documents"}, {"sample", "Commercial sample"},
		{"returned", "Returned goods"}, {"merchandise", "Merchandise"}, {"other", "Other"}} {
		mark := "[ ]"
		if c.key == cat {
			mark = "[X]"
		}
		boxes = append(boxes, mark+" "+c.name)
	}
	if _, err := s.text(strings.Join(boxes, "  "), false, 16, 12, x0, 982, x1-x0, "the customs category"); err != nil {
		return err
	}
	if _, err := s.text("Quantity and detailed description of contents", true, 14, 12, x0, 1006, 500, "a heading"); err != nil {
		return err
	}
	if _, err := s.text("Weight", true, 14, 12, 560, 1006, 100, "a heading"); err != nil {
		return err
	}
	if err := s.right("Value", true, 14, x1, 1006, "a heading"); err != nil {
		return err
	}
	total, weight, cur := int64(0), 0, ""
	origins := map[string]bool{}
	var hs []string
	for i, it := range l.Contents {
		total += it.Value
		weight += it.WeightG
		cur = it.Currency
		origins[it.Origin] = true
		if it.HSCode != "" {
			hs = append(hs, it.HSCode)
		}
		if i >= 3 {
			continue
		}
		y := 1028 + 22*i
		if _, err := s.text(fmt.Sprintf("%d × %s", it.Qty, it.Description), false, 16, 12, x0, y, 510, "a customs description"); err != nil {
			return err
		}
		if _, err := s.text(kg(it.WeightG), false, 16, 12, 560, y, 110, "a customs weight"); err != nil {
			return err
		}
		if err := s.right(money(it.Value, it.Currency), false, 16, x1, y, "a customs value"); err != nil {
			return err
		}
	}
	if len(l.Contents) == 0 {
		if _, err := s.text("Contents not declared by the sender", false, 16, 12, x0, 1028, 510, "a customs line"); err != nil {
			return err
		}
	}
	if n := len(l.Contents) - 3; n > 0 {
		if _, err := s.text(fmt.Sprintf("… and %d more lines", n), false, 14, 12, x0, 1092, 400, "a customs line"); err != nil {
			return err
		}
	}
	if weight == 0 {
		weight = l.WeightG
	}
	s.fill(image.Rect(x0, 1098, x1, 1100))
	if _, err := s.text("Total gross weight "+kg(max(weight, l.WeightG)), true, 16, 12, x0, 1118, 400, "the total weight"); err != nil {
		return err
	}
	if cur != "" {
		if err := s.right("Total value "+money(total, cur), true, 16, x1, 1118, "the total value"); err != nil {
			return err
		}
	}
	var from []string
	for c := range origins {
		from = append(from, c)
	}
	if len(from) == 0 {
		from = []string{l.Origin()}
	}
	hsText := "—"
	if len(hs) > 0 {
		hsText = strings.Join(hs, ", ")
	}
	if _, err := s.text("Country of origin: "+strings.Join(from, ", ")+"    HS tariff number: "+hsText, false, 14, 12, x0, 1138, x1-x0, "the customs origin"); err != nil {
		return err
	}
	sender := l.Sender.Name
	if sender == "" {
		sender = l.SenderID
	}
	date := ""
	if !l.Booked.IsZero() {
		date = l.Booked.UTC().Format("2006-01-02") + ", "
	}
	_, err := s.text("I certify the particulars given are correct and the item holds no dangerous article. "+date+sender,
		false, 12, 10, x0, 1156, x1-x0, "the sender's name")
	return err
}

// domestic is the lower block of a parcel that stays in its country.
func (s *sheet) domestic(l Label, x0, x1 int) error {
	if _, err := s.text("ORDER", true, 16, 16, x0, 960, 200, "a heading"); err != nil {
		return err
	}
	if _, err := s.text(l.OrderID, false, 24, 14, x0, 994, x1-x0, "the order id"); err != nil {
		return err
	}
	y := 1040
	if !l.Booked.IsZero() {
		if _, err := s.text("Booked "+l.Booked.UTC().Format("2006-01-02"), false, 22, 14, x0, y, 360, "the booking date"); err != nil {
			return err
		}
	}
	if l.WeightG > 0 {
		if err := s.right(fmt.Sprintf("%d piece(s), %s", max(l.Pieces, 1), kg(l.WeightG)), false, 22, x1, y, "the weight"); err != nil {
			return err
		}
	}
	return nil
}

// Render draws l as a grey-scale image of Width × Height pixels.
func Render(l Label) (*image.Gray, error) {
	s, err := layout(l)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.draw()
}
