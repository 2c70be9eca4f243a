package carrier_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boombuler/barcode/code128"

	"orderseal/carrier/label"
	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/vault"
)

func dark(c color.Color) bool {
	g := color.GrayModel.Convert(c).(color.Gray)
	return g.Y < 0x80
}

// readBarcode reads the middle row of the barcode area back into modules
// and checks they are the Code 128 symbol of want.
func readBarcode(t *testing.T, img image.Image, want string) {
	t.Helper()
	bc, err := code128.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	var modules []bool
	for x := 0; x < bc.Bounds().Dx(); x++ {
		modules = append(modules, dark(bc.At(x, 0)))
	}
	first, last := -1, -1
	for i, m := range modules {
		if m {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	a := label.BarcodeArea
	for _, y := range []int{a.Min.Y + 2, (a.Min.Y + a.Max.Y) / 2, a.Max.Y - 3} {
		x0, x1 := -1, -1
		for x := a.Min.X; x < a.Max.X; x++ {
			if dark(img.At(x, y)) {
				if x0 < 0 {
					x0 = x
				}
				x1 = x
			}
		}
		if x0 < 0 {
			t.Fatalf("row %d of the barcode is blank", y)
		}
		span := last - first + 1
		if (x1-x0+1)%span != 0 {
			t.Fatalf("row %d: %d px for %d modules", y, x1-x0+1, span)
		}
		w := (x1 - x0 + 1) / span
		if x0-a.Min.X < 10*w || a.Max.X-1-x1 < 10*w {
			t.Fatalf("row %d: quiet zones %d and %d px, want ≥ %d", y, x0-a.Min.X, a.Max.X-1-x1, 10*w)
		}
		for i := first; i <= last; i++ {
			if got := dark(img.At(x0+(i-first)*w+w/2, y)); got != modules[i] {
				t.Fatalf("row %d, module %d: dark=%v, want %v", y, i, got, modules[i])
			}
		}
	}
}

// labelArgs are the label command's flags for e.
func (e *env) labelArgs(tracking, out string) []string {
	return []string{"label", tracking, "-o", out, "-db", e.dbPath, "-key", e.carrierKey, "-vault-url", e.vaultTS.URL, "-vault", keys.Vault}
}

// checkPNG decodes a label and checks its size and barcode.
func checkPNG(t *testing.T, data []byte, tracking string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != label.Width || b.Dy() != label.Height {
		t.Fatalf("label is %v", b)
	}
	if x, y, err := label.PNGDPI(data); err != nil || int(x+0.5) != label.DPI || int(y+0.5) != label.DPI {
		t.Fatalf("label DPI %v × %v, %v", x, y, err)
	}
	readBarcode(t, img, tracking)
}

// TestLabelGranted: the label of a cardholder-token shipment is printed
// with the grant (token, order id, invoice); the grant's uses run out.
func TestLabelGranted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	b, _ := e.grantedOrder(t, "INV-9")
	sh, err := e.merchant(t, keys.Shop).Book(ctx, b, "INV-9")
	if err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	path := filepath.Join(outDir, "label.png")
	code, stdout, stderr := run(t, e.labelArgs(sh.Tracking, path)...)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "stored nowhere else") {
		t.Fatalf("label: exit %d, out %q, err %q", code, stdout, stderr)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("label file %v %v", fi, err)
	}
	data, _ := os.ReadFile(path)
	checkPNG(t, data, sh.Tracking)
	// Never overwritten.
	if code, _, stderr := run(t, e.labelArgs(sh.Tracking, path)...); code != 1 || !strings.Contains(stderr, "hint:") {
		t.Fatalf("label over an existing file: exit %d %q", code, stderr)
	}
	// To stdout.
	code, stdout, _ = run(t, e.labelArgs(sh.Tracking, "-")...)
	if code != 0 {
		t.Fatalf("label to stdout: exit %d", code)
	}
	checkPNG(t, []byte(stdout), sh.Tracking)
	// The grant allows three reveals (vault.DefaultGrantUses); the fourth is refused.
	if code, _, _ := run(t, e.labelArgs(sh.Tracking, filepath.Join(outDir, "3.png"))...); code != 0 {
		t.Fatalf("third print: exit %d", code)
	}
	code, _, stderr = run(t, e.labelArgs(sh.Tracking, filepath.Join(outDir, "4.png"))...)
	if code != 1 || !strings.Contains(stderr, "grant-used-up") || !strings.Contains(stderr, "hint:") {
		t.Fatalf("fourth print: exit %d %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(outDir, "4.png")); err == nil {
		t.Fatal("a refused print left a file")
	}
}

// TestLabelDeposited: the label of an inline-address shipment is printed
// from the carrier's own vault token, and printing leaves no trace of the
// address in the carrier's files or log.
func TestLabelDeposited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	sh, err := e.merchant(t, keys.Shop).Book(ctx, sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{}), "INV-3")
	if err != nil {
		t.Fatal(err)
	}
	for i := range vault.DefaultGrantUses + 1 { // the order's deposit grant rations the prints
		path := filepath.Join(t.TempDir(), "label.png")
		code, _, stderr := run(t, e.labelArgs(sh.Tracking, path)...)
		if i == vault.DefaultGrantUses {
			if code == 0 || !strings.Contains(stderr, "grant-used-up") {
				t.Fatalf("print %d past the grant's uses: exit %d %q", i, code, stderr)
			}
			break
		}
		if code != 0 {
			t.Fatalf("print %d: exit %d %q", i, code, stderr)
		}
		data, _ := os.ReadFile(path)
		checkPNG(t, data, sh.Tracking)
		if strings.Contains(stderr, canaryStreet) || strings.Contains(stderr, canaryCity) {
			t.Fatalf("the label command printed the address: %q", stderr)
		}
	}
	e.assertNoAddress(t)
}

// TestLabelFormats: -format zpl writes ZPL, an -o ending in .pdf a PDF, and
// an unknown format is a usage error that reveals nothing.
func TestLabelFormats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	sh, err := e.merchant(t, keys.Shop).Book(ctx, sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{}), "INV-F")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, append(e.labelArgs(sh.Tracking, "-"), "-format", "gif")...); code != 2 || !strings.Contains(stderr, "hint:") {
		t.Fatalf("-format gif: exit %d %q", code, stderr)
	}
	code, stdout, stderr := run(t, append(e.labelArgs(sh.Tracking, "-"), "-format", "zpl")...)
	if code != 0 || !strings.HasPrefix(stdout, "^XA") || !strings.Contains(stdout, "^FD"+sh.Tracking+"^FS") || !strings.HasSuffix(stdout, "^XZ\n") {
		t.Fatalf("zpl: exit %d %q, %.80q", code, stderr, stdout)
	}
	path := filepath.Join(t.TempDir(), "label.pdf")
	if code, _, stderr := run(t, e.labelArgs(sh.Tracking, path)...); code != 0 || !strings.Contains(stderr, "(pdf, 0600)") {
		t.Fatalf("pdf: exit %d %q", code, stderr)
	}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte("%PDF-")) {
		t.Fatalf("pdf file %.20q %v", data, err)
	}
	e.assertNoAddress(t)
}
