package main

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// writeChart draws one horizontal bar per figure: its ratio on a log scale
// from 0.01× to 10×, a line at 1× (as costly as the baseline) and a tick at
// the goal; green bars meet their goal, red ones miss it, grey have none.
func writeChart(path string, figs []Figure) error {
	const (
		w, rowH, left, right, top = 1100, 34, 330, 40, 50
		lo, hi                    = -2.0, 1.0 // log10 of the axis ends
	)
	h := top + rowH*len(figs) + 40
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	tt, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return err
	}
	face, err := opentype.NewFace(tt, &opentype.FaceOptions{Size: 13, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return err
	}
	defer face.Close()
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	xOf := func(ratio float64) int {
		l := math.Log10(math.Max(ratio, math.Pow(10, lo)))
		l = math.Min(l, hi)
		return left + int(float64(w-left-right)*(l-lo)/(hi-lo))
	}
	fill := func(r image.Rectangle, c color.Color) {
		draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
	}
	grey := color.RGBA{0xbb, 0xbb, 0xbb, 0xff}
	text(10, 22, "orderseal cost / baseline cost (log scale; left of 1× is cheaper than the baseline)", color.Black)
	for _, t := range []float64{0.01, 0.1, 1, 10} {
		x := xOf(t)
		fill(image.Rect(x, top-8, x+1, h-30), grey)
		text(x-12, h-12, formatRatio(t), color.Black)
	}
	for i, f := range figs {
		y := top + i*rowH
		text(10, y+rowH/2+4, f.Name, color.Black)
		c := color.RGBA{0x99, 0x99, 0x99, 0xff}
		if f.Meets != nil {
			c = color.RGBA{0xc0, 0x39, 0x2b, 0xff}
			if *f.Meets {
				c = color.RGBA{0x27, 0xae, 0x60, 0xff}
			}
		}
		fill(image.Rect(left, y+6, max(xOf(f.Ratio), left+1), y+rowH-6), c)
		labelX := xOf(f.Ratio) + 6
		if f.goalMax > 0 {
			x := xOf(f.goalMax)
			fill(image.Rect(x-1, y+2, x+2, y+rowH-2), color.Black)
			if x+2 > labelX-6 && x-1 < labelX+50 {
				labelX = x + 8 // clear of the goal tick
			}
		}
		text(min(labelX, w-right-40), y+rowH/2+4, formatRatio(f.Ratio), color.Black)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(out, img); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func formatRatio(r float64) string {
	digits := 3
	switch {
	case r >= 10:
		digits = 0
	case r >= 1:
		digits = 1
	case r >= 0.1:
		digits = 2
	}
	return strconv.FormatFloat(r, 'f', digits, 64) + "×"
}
