package label

import (
	"fmt"
	"image"
	"image/draw"
	"strings"
	"unicode/utf8"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/datamatrix"
	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
)

// The sheet is the label as a display list: texts, rules, boxes and the
// two symbols, in 203 dpi pixels. The PNG is the list drawn; the ZPL is
// the list written as printer commands (text in printer fonts where they
// can, as graphics where a script needs Noto Sans CJK); the PDF holds the
// PNG on a 4 × 6 in page.

type kind int

const (
	kText kind = iota
	kFill
	kBox
	kCode128
	kDataMatrix
)

type item struct {
	kind  kind
	r     image.Rectangle // the item's box (for text: from its top to its bottom)
	text  string          // text, or a symbol's data
	tf    *typeface
	size  float64
	base  int // text baseline
	thick int // box line width
}

// sheet is a label being laid out: its items and the faces they use.
type sheet struct {
	w, h    int
	country string // the destination: the CJK variant of Han text
	items   []item
	faces   map[faceKey]font.Face
}

type faceKey struct {
	tf   *typeface
	size float64
}

func newSheet(w, h int, country string) *sheet {
	return &sheet{w: w, h: h, country: country, faces: map[faceKey]font.Face{}}
}

func (s *sheet) face(tf *typeface, size float64) (font.Face, error) {
	k := faceKey{tf, size}
	if f, ok := s.faces[k]; ok {
		return f, nil
	}
	f, err := tf.newFace(size)
	if err != nil {
		return nil, err
	}
	s.faces[k] = f
	return f, nil
}

func (s *sheet) close() {
	for _, f := range s.faces {
		f.Close()
	}
}

func (s *sheet) measure(tf *typeface, size float64, t string) (int, error) {
	f, err := s.face(tf, size)
	if err != nil {
		return 0, err
	}
	return font.MeasureString(f, t).Ceil(), nil
}

// text places t with its baseline at y, starting at x, at size or smaller
// down to min so that it fits width; cut with an ellipsis when even min
// does not fit. It returns the size used. what names t in errors.
func (s *sheet) text(t string, bold bool, size, min float64, x, y, width int, what string) (float64, error) {
	t = strings.TrimSpace(t)
	if t == "" {
		return size, nil
	}
	tf, err := faceFor(t, bold, s.country, what)
	if err != nil {
		return 0, err
	}
	for ; ; size -= 1 {
		w, err := s.measure(tf, size, t)
		if err != nil {
			return 0, err
		}
		if w <= width || size <= min {
			if w > width {
				if t, err = s.truncate(tf, size, t, width); err != nil {
					return 0, err
				}
			}
			s.items = append(s.items, item{kind: kText, text: t, tf: tf, size: size, base: y,
				r: image.Rect(x, y-int(size*0.88), x+min2(w, width), y+int(size*0.25))})
			return size, nil
		}
	}
}

// width is how wide t is at size in the face its script needs.
func (s *sheet) width(t string, bold bool, size float64, what string) (int, error) {
	tf, err := faceFor(t, bold, s.country, what)
	if err != nil {
		return 0, err
	}
	return s.measure(tf, size, t)
}

// right places t so that it ends at x1.
func (s *sheet) right(t string, bold bool, size float64, x1, y int, what string) error {
	w, err := s.width(t, bold, size, what)
	if err != nil {
		return err
	}
	_, err = s.text(t, bold, size, size, x1-w, y, w, what)
	return err
}

// centred places t centred between x0 and x1.
func (s *sheet) centred(t string, bold bool, size float64, x0, x1, y int, what string) error {
	w, err := s.width(t, bold, size, what)
	if err != nil {
		return err
	}
	if w > x1-x0 {
		_, err = s.text(t, bold, size, size*0.6, x0, y, x1-x0, what)
		return err
	}
	_, err = s.text(t, bold, size, size, x0+(x1-x0-w)/2, y, w, what)
	return err
}

func (s *sheet) truncate(tf *typeface, size float64, t string, width int) (string, error) {
	ell := "…"
	ew, err := s.measure(tf, size, ell)
	if err != nil {
		return "", err
	}
	n, err := s.fit(tf, size, t, width-ew)
	if err != nil {
		return "", err
	}
	return t[:n] + ell, nil
}

// fit is the byte length of the longest prefix of t (at least one rune) no
// wider than width.
func (s *sheet) fit(tf *typeface, size float64, t string, width int) (int, error) {
	f, err := s.face(tf, size)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, r := range t {
		end := i + utf8.RuneLen(r)
		if n > 0 && font.MeasureString(f, t[:end]).Ceil() > width {
			break
		}
		n = end
	}
	return n, nil
}

// line is one line of a block, bold or not.
type line struct {
	s    string
	bold bool
}

// block places lines in area at the largest size from max down to min at
// which each is one line and all fit; failing that, wrapped at spaces
// (and inside a word, CJK text included, when the word alone is too
// wide) at the largest size at which all fit; at min what does not fit is
// cut.
func (s *sheet) block(lines []line, area image.Rectangle, max, min float64, what string) error {
	whole := true // first pass: no line wrapped
	for size := max; ; size -= 2 {
		if whole && size < min {
			whole, size = false, max
		}
		type row struct {
			s  string
			tf *typeface
		}
		var rows []row
		for _, l := range lines {
			tf, err := faceFor(l.s, l.bold, s.country, what)
			if err != nil {
				return err
			}
			ws, err := s.wrap(tf, size, l.s, area.Dx())
			if err != nil {
				return err
			}
			for _, w := range ws {
				rows = append(rows, row{w, tf})
			}
		}
		lineH := int(size * 1.22)
		fits := len(rows)*lineH <= area.Dy()
		if whole && (len(rows) != len(lines) || !fits) {
			continue
		}
		if fits || size <= min {
			y := area.Min.Y + int(size*0.95)
			for _, r := range rows {
				if y+int(size*0.25) > area.Max.Y {
					break
				}
				w, err := s.measure(r.tf, size, r.s)
				if err != nil {
					return err
				}
				s.items = append(s.items, item{kind: kText, text: r.s, tf: r.tf, size: size, base: y,
					r: image.Rect(area.Min.X, y-int(size*0.88), area.Min.X+w, y+int(size*0.25))})
				y += lineH
			}
			return nil
		}
	}
}

func (s *sheet) wrap(tf *typeface, size float64, t string, width int) ([]string, error) {
	var out []string
	cur := ""
	for _, w := range strings.Fields(t) {
		try := w
		if cur != "" {
			try = cur + " " + w
		}
		tw, err := s.measure(tf, size, try)
		if err != nil {
			return nil, err
		}
		if tw <= width {
			cur = try
			continue
		}
		if cur != "" {
			out = append(out, cur)
		}
		for {
			ww, err := s.measure(tf, size, w)
			if err != nil {
				return nil, err
			}
			if ww <= width {
				break
			}
			n, err := s.fit(tf, size, w, width)
			if err != nil {
				return nil, err
			}
			out = append(out, w[:n])
			w = w[n:]
		}
		cur = w
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out, nil
}

func (s *sheet) fill(r image.Rectangle) { s.items = append(s.items, item{kind: kFill, r: r}) }

func (s *sheet) box(r image.Rectangle, thick int) {
	s.items = append(s.items, item{kind: kBox, r: r, thick: thick})
}

func (s *sheet) code128(data string, r image.Rectangle) {
	s.items = append(s.items, item{kind: kCode128, text: data, r: r})
}

func (s *sheet) dataMatrix(data string, r image.Rectangle) {
	s.items = append(s.items, item{kind: kDataMatrix, text: data, r: r})
}

// draw renders the sheet on a white grey-scale image.
func (s *sheet) draw() (*image.Gray, error) {
	img := image.NewGray(image.Rect(0, 0, s.w, s.h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for _, it := range s.items {
		if err := s.drawItem(img, it, image.Point{}); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// drawItem draws it on dst, shifted by -off.
func (s *sheet) drawItem(dst draw.Image, it item, off image.Point) error {
	r := it.r.Sub(off)
	switch it.kind {
	case kText:
		f, err := s.face(it.tf, it.size)
		if err != nil {
			return err
		}
		d := &font.Drawer{Dst: dst, Src: image.Black, Face: f, Dot: fixed.P(it.r.Min.X-off.X, it.base-off.Y)}
		d.DrawString(it.text)
	case kFill:
		draw.Draw(dst, r, image.Black, image.Point{}, draw.Src)
	case kBox:
		t := it.thick
		for _, e := range []image.Rectangle{
			image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+t), image.Rect(r.Min.X, r.Max.Y-t, r.Max.X, r.Max.Y),
			image.Rect(r.Min.X, r.Min.Y, r.Min.X+t, r.Max.Y), image.Rect(r.Max.X-t, r.Min.Y, r.Max.X, r.Max.Y),
		} {
			draw.Draw(dst, e, image.Black, image.Point{}, draw.Src)
		}
	case kCode128:
		bc, module, err := code128Symbol(it.text, r.Dx())
		if err != nil {
			return err
		}
		scaled, err := barcode.Scale(bc, bc.Bounds().Dx()*module, r.Dy())
		if err != nil {
			return fmt.Errorf("barcode: %w", err)
		}
		x := r.Min.X + (r.Dx()-scaled.Bounds().Dx())/2
		draw.Draw(dst, image.Rect(x, r.Min.Y, x+scaled.Bounds().Dx(), r.Max.Y), scaled, scaled.Bounds().Min, draw.Src)
	case kDataMatrix:
		dm, module, err := dataMatrixSymbol(it.text, min2(r.Dx(), r.Dy()))
		if err != nil {
			return err
		}
		side := dm.Bounds().Dx() * module
		scaled, err := barcode.Scale(dm, side, dm.Bounds().Dy()*module)
		if err != nil {
			return fmt.Errorf("data matrix: %w", err)
		}
		draw.Draw(dst, image.Rect(r.Min.X, r.Min.Y, r.Min.X+side, r.Min.Y+scaled.Bounds().Dy()), scaled, scaled.Bounds().Min, draw.Src)
	}
	return nil
}

// code128Symbol is the Code 128 symbol of data and the widest whole-pixel
// module with which it and ten-module quiet zones fit width.
func code128Symbol(data string, width int) (barcode.Barcode, int, error) {
	bc, err := code128.Encode(data)
	if err != nil {
		return nil, 0, fmt.Errorf("barcode: %w", err)
	}
	module := width / (bc.Bounds().Dx() + 20)
	if module < 1 {
		return nil, 0, fmt.Errorf("barcode: %d characters do not fit the label", len(data))
	}
	return bc, module, nil
}

// dataMatrixSymbol is the ECC 200 Data Matrix of data and the largest
// whole-pixel module with which it fits side.
func dataMatrixSymbol(data string, side int) (barcode.Barcode, int, error) {
	dm, err := datamatrix.Encode(data)
	if err != nil {
		return nil, 0, fmt.Errorf("data matrix: %w", err)
	}
	module := side / dm.Bounds().Dx()
	if module < 1 {
		return nil, 0, fmt.Errorf("data matrix: %d bytes do not fit the label", len(data))
	}
	return dm, module, nil
}

func min2(a, b int) int {
	if a < b {
		return a
	}
	return b
}
