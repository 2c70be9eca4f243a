package label

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
)

// Formats a label is written in.
const (
	FormatPNG = "png"
	FormatPDF = "pdf"
	FormatZPL = "zpl"
)

// Formats lists them.
var Formats = []string{FormatPNG, FormatPDF, FormatZPL}

// ErrFormat is returned for a format not in Formats.
var ErrFormat = errors.New("label: unknown format (want png, pdf or zpl)")

// Write renders l and writes it to w in format.
func Write(w io.Writer, l Label, format string) error {
	switch format {
	case FormatPNG:
		return WritePNG(w, l)
	case FormatPDF:
		return WritePDF(w, l)
	case FormatZPL:
		return WriteZPL(w, l)
	}
	return ErrFormat
}

// WritePNG writes l as a grey-scale PNG whose pHYs chunk records 203 dpi
// (7992 pixels per metre), so that it prints at 4 × 6 in.
func WritePNG(w io.Writer, l Label) error {
	img, err := Render(l)
	if err != nil {
		return err
	}
	return encodePNG(w, img)
}

func encodePNG(w io.Writer, img image.Image) error {
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return err
	}
	b := buf.Bytes()
	// The signature (8 bytes), then IHDR: length 13, type, data, CRC.
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	if len(b) < ihdrEnd || string(b[12:16]) != "IHDR" {
		return errors.New("label: unexpected PNG encoding")
	}
	if _, err := w.Write(b[:ihdrEnd]); err != nil {
		return err
	}
	if _, err := w.Write(physChunk(DPI)); err != nil {
		return err
	}
	_, err := w.Write(b[ihdrEnd:])
	return err
}

// PixelsPerMetre is dpi in the pHYs chunk's unit.
func PixelsPerMetre(dpi int) uint32 { return uint32(math.Round(float64(dpi) / 0.0254)) }

func physChunk(dpi int) []byte {
	data := make([]byte, 9)
	ppm := PixelsPerMetre(dpi)
	binary.BigEndian.PutUint32(data[0:], ppm)
	binary.BigEndian.PutUint32(data[4:], ppm)
	data[8] = 1 // the unit is the metre
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, "pHYs"...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte("pHYs"), data...)))
}

// PNGDPI reads the pHYs chunk of a PNG and returns its horizontal and
// vertical resolution in dots per inch (0, 0 when it has none).
func PNGDPI(data []byte) (x, y float64, err error) {
	if len(data) < 8 || string(data[1:4]) != "PNG" {
		return 0, 0, errors.New("not a PNG")
	}
	for p := 8; p+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[p:]))
		typ := string(data[p+4 : p+8])
		if p+12+n > len(data) {
			break
		}
		if typ == "pHYs" && n == 9 && data[p+8+8] == 1 {
			return float64(binary.BigEndian.Uint32(data[p+8:])) * 0.0254, float64(binary.BigEndian.Uint32(data[p+12:])) * 0.0254, nil
		}
		if typ == "IDAT" {
			break
		}
		p += 12 + n
	}
	return 0, 0, nil
}

// WritePDF writes l as a one-page PDF of 4 × 6 in (101.6 × 152.4 mm)
// holding the 203 dpi raster: Noto Sans CJK is an OpenType collection
// with CFF outlines, which fpdf cannot embed, and a thermal printer
// prints at that raster anyway.
func WritePDF(w io.Writer, l Label) error {
	img, err := Render(l)
	if err != nil {
		return err
	}
	var raster bytes.Buffer
	if err := encodePNG(&raster, img); err != nil {
		return err
	}
	const wmm, hmm = 101.6, 152.4
	pdf := fpdf.NewCustom(&fpdf.InitType{OrientationStr: "P", UnitStr: "mm", Size: fpdf.SizeType{Wd: wmm, Ht: hmm}})
	pdf.SetMargins(0, 0, 0)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetTitle("Shipping label "+l.Tracking, true)
	pdf.SetCreator("orderseal carrier", true)
	pdf.SetCreationDate(stamp(l.Booked))
	pdf.SetModificationDate(stamp(l.Booked))
	pdf.AddPage()
	opt := fpdf.ImageOptions{ImageType: "PNG", ReadDpi: false}
	pdf.RegisterImageOptionsReader("label", opt, &raster)
	pdf.ImageOptions("label", 0, 0, wmm, hmm, false, opt, 0, "")
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("label: pdf: %w", err)
	}
	return pdf.Output(w)
}

// stamp is the PDF's date: the booking's, so the same label makes the
// same file.
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return t.UTC()
}

// WriteZPL writes l in ZPL II for a 203 dpi thermal printer: text in the
// printer's scalable font 0 where it is printable ASCII, and as a graphic
// field (^GFA) where it needs another script (Hangul, kana, Han, ß…);
// rules and boxes as ^GB; the tracking number as a native Code 128
// (^BC) and the Data Matrix as ^BX, so the printer draws both symbols at
// its own resolution.
func WriteZPL(w io.Writer, l Label) error {
	s, err := layout(l)
	if err != nil {
		return err
	}
	defer s.close()
	var b strings.Builder
	fmt.Fprintf(&b, "^XA\n^CI28\n^PW%d\n^LL%d\n^LH0,0\n", Width, Height)
	for _, it := range s.items {
		switch it.kind {
		case kFill:
			fmt.Fprintf(&b, "^FO%d,%d^GB%d,%d,%d,B^FS\n", it.r.Min.X, it.r.Min.Y, it.r.Dx(), it.r.Dy(), min2(it.r.Dx(), it.r.Dy()))
		case kBox:
			fmt.Fprintf(&b, "^FO%d,%d^GB%d,%d,%d,B^FS\n", it.r.Min.X, it.r.Min.Y, it.r.Dx(), it.r.Dy(), it.thick)
		case kCode128:
			bc, module, err := code128Symbol(it.text, it.r.Dx())
			if err != nil {
				return err
			}
			x := it.r.Min.X + (it.r.Dx()-bc.Bounds().Dx()*module)/2
			fmt.Fprintf(&b, "^FO%d,%d^BY%d^BCN,%d,N,N,N^FH^FD%s^FS\n", x, it.r.Min.Y, module, it.r.Dy(), zplText(it.text))
		case kDataMatrix:
			dm, module, err := dataMatrixSymbol(it.text, min2(it.r.Dx(), it.r.Dy()))
			if err != nil {
				return err
			}
			_ = dm
			fmt.Fprintf(&b, "^FO%d,%d^BXN,%d,200^FH^FD%s^FS\n", it.r.Min.X, it.r.Min.Y, module, zplText(it.text))
		case kText:
			if printableASCII(it.text) && it.tf.name[:2] == "Go" {
				h := int(math.Round(it.size))
				fmt.Fprintf(&b, "^FO%d,%d^A0N,%d,%d^FH^FD%s^FS\n", it.r.Min.X, it.base-int(it.size*0.75), h, h, zplText(it.text))
				continue
			}
			g, err := s.rasterize(it)
			if err != nil {
				return err
			}
			b.WriteString(g)
		}
	}
	b.WriteString("^XZ\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// rasterize draws one text item into a 1-bit graphic field.
func (s *sheet) rasterize(it item) (string, error) {
	r := it.r.Inset(-2)
	r.Max.X += 4
	img := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	if err := s.drawItem(img, it, r.Min); err != nil {
		return "", err
	}
	rowBytes := (r.Dx() + 7) / 8
	bits := make([]byte, rowBytes*r.Dy())
	for y := range r.Dy() {
		for x := range r.Dx() {
			if img.Pix[y*img.Stride+x] < 0x80 {
				bits[y*rowBytes+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	return fmt.Sprintf("^FO%d,%d^GFA,%d,%d,%d,%s^FS\n", r.Min.X, r.Min.Y, len(bits), len(bits), rowBytes,
		strings.ToUpper(hex.EncodeToString(bits))), nil
}

func printableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// zplText escapes the characters ZPL gives a meaning inside ^FD under
// ^FH (the default hex indicator is _): ^, ~ and _ become _5E, _7E, _5F.
func zplText(s string) string {
	return strings.NewReplacer("_", "_5F", "^", "_5E", "~", "_7E").Replace(s)
}
