package carrier

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"orderseal/carrier/api"
	"orderseal/order"
)

// Label geometry: a 4 × 6 inch thermal label at 203 dpi.
const (
	LabelWidth  = 812
	LabelHeight = 1218
	labelMargin = 32
)

// BarcodeArea is where the Code 128 barcode of the tracking number is drawn,
// quiet zones included.
var BarcodeArea = image.Rect(labelMargin, 850, LabelWidth-labelMargin, 1050)

// addressArea is where the recipient block must fit.
var addressArea = image.Rect(labelMargin, 330, LabelWidth-labelMargin, 820)

// Label is what a shipping label shows. The address is revealed by the
// vault for the moment of printing and is stored nowhere.
type Label struct {
	Carrier   string // carrier identity, printed in the header
	Sender    string // merchant identity
	Recipient string // recipient name from the carrier section; may be ""
	Address   order.Address
	Tracking  string
	OrderID   string
	Booked    time.Time
}

var fonts = sync.OnceValues(func() ([2]*opentype.Font, error) {
	var out [2]*opentype.Font
	var err error
	if out[0], err = opentype.Parse(goregular.TTF); err != nil {
		return out, err
	}
	out[1], err = opentype.Parse(gobold.TTF)
	return out, err
})

func face(bold bool, size float64) (font.Face, error) {
	fs, err := fonts()
	if err != nil {
		return nil, err
	}
	f := fs[0]
	if bold {
		f = fs[1]
	}
	return opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
}

// CountryName is the English name of an ISO 3166-1 alpha-2 code in upper
// case, as UPU asks for the last line of an international address; the code
// itself when unknown.
func CountryName(code string) string {
	r, err := language.ParseRegion(code)
	if err != nil {
		return code
	}
	if n := display.English.Regions().Name(r); n != "" && n != "Unknown Region" {
		return strings.ToUpper(n)
	}
	return code
}

// addressLines are the recipient block's lines, in delivery order.
func (l *Label) addressLines() []string {
	a := l.Address
	var lines []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			lines = append(lines, s)
		}
	}
	add(l.Recipient)
	if !strings.EqualFold(strings.TrimSpace(a.Name), strings.TrimSpace(l.Recipient)) {
		add(a.Name)
	}
	add(a.Line1)
	add(a.Line2)
	add(strings.TrimSpace(a.PostalCode + " " + a.City))
	add(a.Region)
	add(CountryName(a.Country))
	return lines
}

// spacedTracking is the human-readable form of an S10 number: OS 123 456 785 DE.
func spacedTracking(t string) string {
	if len(t) != api.TrackingLen {
		return t
	}
	return t[:2] + " " + t[2:5] + " " + t[5:8] + " " + t[8:11] + " " + t[11:]
}

// RenderLabel draws the label as a grey-scale image of LabelWidth ×
// LabelHeight pixels.
func RenderLabel(l Label) (*image.Gray, error) {
	if err := api.ValidateTracking(l.Tracking); err != nil {
		return nil, err
	}
	img := image.NewGray(image.Rect(0, 0, LabelWidth, LabelHeight))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	p := &painter{img: img}

	// Header: carrier, then sender.
	y := labelMargin + 36
	if err := p.text(l.Carrier, true, 32, labelMargin, y, LabelWidth-2*labelMargin); err != nil {
		return nil, err
	}
	y += 24
	p.rule(y, 4)
	y += 44
	if err := p.text("FROM", true, 20, labelMargin, y, 200); err != nil {
		return nil, err
	}
	y += 36
	if err := p.text(l.Sender, false, 28, labelMargin, y, LabelWidth-2*labelMargin); err != nil {
		return nil, err
	}
	y += 28
	p.rule(y, 2)
	if err := p.text("TO", true, 20, labelMargin, addressArea.Min.Y-16, 200); err != nil {
		return nil, err
	}
	if err := p.block(l.addressLines(), addressArea); err != nil {
		return nil, err
	}
	p.rule(BarcodeArea.Min.Y-20, 4)

	if err := drawBarcode(img, l.Tracking, BarcodeArea); err != nil {
		return nil, err
	}
	if err := p.centered(spacedTracking(l.Tracking), true, 40, BarcodeArea.Max.Y+56); err != nil {
		return nil, err
	}
	foot := "order " + l.OrderID
	if !l.Booked.IsZero() {
		foot += "  ·  booked " + l.Booked.UTC().Format("2006-01-02")
	}
	if err := p.centered(foot, false, 20, LabelHeight-labelMargin-8); err != nil {
		return nil, err
	}
	return img, nil
}

// WriteLabelPNG renders l and writes it to w as PNG.
func WriteLabelPNG(w io.Writer, l Label) error {
	img, err := RenderLabel(l)
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

// drawBarcode draws the Code 128 symbol of s, as wide as area allows with
// whole-pixel modules and a quiet zone of at least ten modules each side.
func drawBarcode(img draw.Image, s string, area image.Rectangle) error {
	bc, err := code128.Encode(s)
	if err != nil {
		return fmt.Errorf("barcode: %w", err)
	}
	modules := bc.Bounds().Dx()
	module := area.Dx() / (modules + 20)
	if module < 1 {
		return errors.New("barcode: tracking number too long for the label")
	}
	scaled, err := barcode.Scale(bc, modules*module, area.Dy())
	if err != nil {
		return fmt.Errorf("barcode: %w", err)
	}
	x := area.Min.X + (area.Dx()-scaled.Bounds().Dx())/2
	r := image.Rect(x, area.Min.Y, x+scaled.Bounds().Dx(), area.Max.Y)
	draw.Draw(img, r, scaled, scaled.Bounds().Min, draw.Src)
	return nil
}

type painter struct{ img *image.Gray }

func (p *painter) rule(y, thickness int) {
	draw.Draw(p.img, image.Rect(labelMargin, y, LabelWidth-labelMargin, y+thickness), image.Black, image.Point{}, draw.Src)
}

// text draws one line at baseline y, shrinking the size until it fits in
// width, and cutting it short with an ellipsis when even 14 pt does not fit.
func (p *painter) text(s string, bold bool, size float64, x, y, width int) error {
	for ; ; size -= 2 {
		f, err := face(bold, size)
		if err != nil {
			return err
		}
		d := &font.Drawer{Dst: p.img, Src: image.Black, Face: f}
		if d.MeasureString(s).Ceil() <= width || size <= 14 {
			s = truncate(d, s, width)
			d.Dot = fixed.P(x, y)
			d.DrawString(s)
			return f.Close()
		}
		f.Close()
	}
}

func (p *painter) centered(s string, bold bool, size float64, y int) error {
	f, err := face(bold, size)
	if err != nil {
		return err
	}
	defer f.Close()
	d := &font.Drawer{Dst: p.img, Src: image.Black, Face: f}
	s = truncate(d, s, LabelWidth-2*labelMargin)
	d.Dot = fixed.P((LabelWidth-d.MeasureString(s).Ceil())/2, y)
	d.DrawString(s)
	return nil
}

// block draws lines, the first in bold, wrapped at word boundaries, at the
// largest size from 44 pt down to 18 pt at which the whole block fits in
// area; at 18 pt what does not fit is cut.
func (p *painter) block(lines []string, area image.Rectangle) error {
	for size := 44.0; ; size -= 2 {
		bf, err := face(true, size)
		if err != nil {
			return err
		}
		rf, err := face(false, size)
		if err != nil {
			bf.Close()
			return err
		}
		type row struct {
			s string
			f font.Face
		}
		var rows []row
		for i, l := range lines {
			f := rf
			if i == 0 {
				f = bf
			}
			for _, w := range wrap(&font.Drawer{Face: f}, l, area.Dx()) {
				rows = append(rows, row{w, f})
			}
		}
		lineH := int(size * 1.25)
		if len(rows)*lineH <= area.Dy() || size <= 18 {
			y := area.Min.Y + int(size)
			for _, r := range rows {
				if y > area.Max.Y {
					break
				}
				d := &font.Drawer{Dst: p.img, Src: image.Black, Face: r.f, Dot: fixed.P(area.Min.X, y)}
				d.DrawString(r.s)
				y += lineH
			}
			bf.Close()
			return rf.Close()
		}
		bf.Close()
		rf.Close()
	}
}

// wrap breaks s into lines no wider than width, at spaces where it can and
// inside a word only when the word alone is too wide.
func wrap(d *font.Drawer, s string, width int) []string {
	var out []string
	cur := ""
	for _, w := range strings.Fields(s) {
		try := w
		if cur != "" {
			try = cur + " " + w
		}
		if d.MeasureString(try).Ceil() <= width {
			cur = try
			continue
		}
		if cur != "" {
			out = append(out, cur)
		}
		for d.MeasureString(w).Ceil() > width {
			n := fit(d, w, width)
			out = append(out, w[:n])
			w = w[n:]
		}
		cur = w
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// fit is the byte length of the longest prefix of s (at least one rune) no
// wider than width.
func fit(d *font.Drawer, s string, width int) int {
	n := 0
	for i, r := range s {
		end := i + utf8.RuneLen(r)
		if n > 0 && d.MeasureString(s[:end]).Ceil() > width {
			break
		}
		n = end
	}
	return n
}

func truncate(d *font.Drawer, s string, width int) string {
	if d.MeasureString(s).Ceil() <= width {
		return s
	}
	return s[:fit(d, s, width-d.MeasureString("…").Ceil())] + "…"
}
