package label

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"orderseal/order"
)

var update = flag.Bool("update", false, "redraw testdata/golden/*.png")

// vectors reads testdata/labels.json.
func vectors(t testing.TB) map[string]Label {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Labels map[string]labelJSON `json:"labels"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]Label{}
	for k, l := range v.Labels {
		out[k] = l.Label()
	}
	if len(out) < 5 {
		t.Fatalf("only %d label vectors", len(out))
	}
	return out
}

// TestNotoSansCJK: the CJK labels need Noto Sans CJK (make test installs
// Debian's fonts-noto-cjk); without it this fails, it does not skip.
func TestNotoSansCJK(t *testing.T) {
	paths, err := CJKFontPaths()
	if err != nil {
		t.Fatalf("%v (run make fonts, or apt-get install fonts-noto-cjk)", err)
	}
	t.Logf("Noto Sans CJK: %s, %s", paths[0], paths[1])
}

// TestGoldenLabels draws every vector and compares it, decoded pixel by
// pixel, with its golden image: at most 0.2 % of the pixels may differ by
// more than a quarter of the grey range (anti-aliasing of another
// rasteriser or font build), none may change size.
func TestGoldenLabels(t *testing.T) {
	for name, l := range vectors(t) {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WritePNG(&buf, l); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", name+".png")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := png.Decode(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			gold, err := png.Decode(bytes.NewReader(want))
			if err != nil {
				t.Fatal(err)
			}
			if got.Bounds() != gold.Bounds() || got.Bounds() != image.Rect(0, 0, Width, Height) {
				t.Fatalf("label %v, golden %v, want %dx%d", got.Bounds(), gold.Bounds(), Width, Height)
			}
			diff := 0
			for y := range Height {
				for x := range Width {
					a, b := gray(got, x, y), gray(gold, x, y)
					if a-b > 64 || b-a > 64 {
						diff++
					}
				}
			}
			if limit := Width * Height / 500; diff > limit {
				t.Fatalf("%d pixels differ from %s (limit %d); if the change is meant, look at the new image and run -update", diff, path, limit)
			}
		})
	}
}

func gray(img image.Image, x, y int) int {
	r, g, b, _ := img.At(x, y).RGBA()
	return int((r*299 + g*587 + b*114) / 1000 >> 8)
}

// TestPNGRecordsDPI: the PNG's pHYs chunk says 203 dpi.
func TestPNGRecordsDPI(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePNG(&buf, vectors(t)["de"]); err != nil {
		t.Fatal(err)
	}
	x, y, err := PNGDPI(buf.Bytes())
	if err != nil || int(x+0.5) != DPI || int(y+0.5) != DPI {
		t.Fatalf("pHYs: %.2f × %.2f dpi, %v", x, y, err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatalf("the PNG with pHYs does not decode: %v", err)
	}
}

// TestCountryLine: the country line is on international parcels only.
func TestCountryLine(t *testing.T) {
	v := vectors(t)
	for name, want := range map[string]bool{"kr": true, "jp": true, "cn": true, "us": false, "de": false} {
		l := v[name]
		s, err := layout(l)
		if err != nil {
			t.Fatal(err)
		}
		texts := s.texts()
		s.close()
		country := map[string]string{"kr": "REPUBLIC OF KOREA", "jp": "JAPAN", "cn": "CHINA", "us": "UNITED STATES", "de": "GERMANY"}[name]
		has := false
		for _, tx := range texts {
			has = has || tx == country
		}
		if has != want || l.International() != want {
			t.Errorf("%s: country line %v, international %v; want %v", name, has, l.International(), want)
		}
		cn22 := strings.Contains(strings.Join(texts, "\n"), "CN 22")
		if cn22 != want {
			t.Errorf("%s: CN22 %v, want %v", name, cn22, want)
		}
	}
}

// TestLabelCarries: what a carrier needs is on every vector's label.
func TestLabelCarries(t *testing.T) {
	for name, l := range vectors(t) {
		s, err := layout(l)
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(s.texts(), "\n")
		kinds := map[kind]int{}
		for _, it := range s.items {
			kinds[it.kind]++
		}
		s.close()
		for _, want := range []string{"FROM / RETURN TO", l.Sender.Name, l.Service, "1/1", kg(l.WeightG), RoutingCode(l.Address),
			spacedTracking(l.Tracking), "Tel. ", l.Recipient} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: the label lacks %q", name, want)
			}
		}
		if l.GiftNote != "" && !strings.Contains(all, "Gift note: ") {
			t.Errorf("%s: no gift note", name)
		}
		if kinds[kCode128] != 1 || kinds[kDataMatrix] != 1 {
			t.Errorf("%s: %d Code 128, %d Data Matrix", name, kinds[kCode128], kinds[kDataMatrix])
		}
	}
}

// texts lists the sheet's texts in order.
func (s *sheet) texts() []string {
	var out []string
	for _, it := range s.items {
		if it.kind == kText {
			out = append(out, it.text)
		}
	}
	return out
}

// TestAddressOrder: CJK addresses run from the region down, the name after
// the street; Latin ones start with the name.
func TestAddressOrder(t *testing.T) {
	v := vectors(t)
	for name, first := range map[string]string{"kr": "서울특별시 강남구", "jp": "〒100-0001", "cn": "100022", "us": "Jane Doe", "de": "Erika Mustermann"} {
		s, err := layout(v[name])
		if err != nil {
			t.Fatal(err)
		}
		var block []string
		for _, it := range s.items {
			if it.kind == kText && it.r.Overlaps(AddressArea) {
				block = append(block, it.text)
			}
		}
		s.close()
		if len(block) == 0 || block[0] != first {
			t.Errorf("%s: address block starts %q, want %q", name, block, first)
		}
	}
}

func TestNoFontError(t *testing.T) {
	l := vectors(t)["de"]
	l.Recipient = "ᎣᏏᏲ ᏣᎳᎩ" // Cherokee: neither the Go fonts nor Noto Sans CJK
	_, err := Render(l)
	if !errors.Is(err, ErrNoFont) || !strings.Contains(err.Error(), "Cherokee") || strings.Contains(err.Error(), l.Recipient) {
		t.Fatalf("err %v: want ErrNoFont naming the script, not the name", err)
	}
}

func TestRoutingCode(t *testing.T) {
	for a, want := range map[order.Address]string{
		{Country: "KR", PostalCode: "06236"}:    "KR-062",
		{Country: "JP", PostalCode: "100-0001"}: "JP-100",
		{Country: "CN", PostalCode: "100022"}:   "CN-1000",
		{Country: "US", PostalCode: "94105"}:    "US-941",
		{Country: "GB", PostalCode: "SW1A 1AA"}: "GB-SW1A",
		{Country: "DE", PostalCode: "10115"}:    "DE-10",
		{Country: "IE"}:                         "IE",
	} {
		if got := RoutingCode(a); got != want {
			t.Errorf("RoutingCode(%+v) = %q, want %q", a, got, want)
		}
	}
}

func TestFormats(t *testing.T) {
	l := vectors(t)["kr"]
	var pdf, zpl bytes.Buffer
	if err := Write(&pdf, l, FormatPDF); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf.Bytes(), []byte("%PDF-")) || !bytes.Contains(pdf.Bytes(), []byte("/MediaBox [0 0 288.00 432.00]")) {
		t.Fatalf("pdf: %.200q", pdf.Bytes())
	}
	var again bytes.Buffer
	if err := WritePDF(&again, l); err != nil || !bytes.Equal(again.Bytes(), pdf.Bytes()) {
		t.Fatal("the same label makes another PDF")
	}
	if err := Write(&zpl, l, FormatZPL); err != nil {
		t.Fatal(err)
	}
	z := zpl.String()
	for _, want := range []string{"^XA", "^PW812", "^LL1218", "^BCN,", "^FD" + l.Tracking + "^FS", "^BXN,", "^GFA,", "^XZ"} {
		if !strings.Contains(z, want) {
			t.Errorf("zpl lacks %q", want)
		}
	}
	for i := range len(z) {
		if z[i] > 0x7e {
			t.Fatal("zpl holds non-ASCII bytes; CJK text must be graphics")
		}
	}
	if err := Write(&zpl, l, "gif"); !errors.Is(err, ErrFormat) {
		t.Fatalf("gif: %v", err)
	}
	keys := []string{}
	for k := range vectors(t) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	_ = keys
}

// FuzzPNGDPI: the pHYs reader never panics on any bytes.
func FuzzPNGDPI(f *testing.F) {
	var buf bytes.Buffer
	if err := encodePNG(&buf, image.NewGray(image.Rect(0, 0, 3, 2))); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, y, err := PNGDPI(data)
		if err == nil && (x < 0 || y < 0) {
			t.Fatal("negative resolution")
		}
	})
}
