package label

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
)

// ErrNoFont is wrapped when no installed font can draw a text the label
// must carry (a name in a script neither the Go fonts nor Noto Sans CJK
// cover, or CJK text on a machine without Noto Sans CJK).
var ErrNoFont = errors.New("label: no installed font can draw this text")

// FontDirEnv names a colon-separated list of directories searched for the
// Noto Sans CJK collections before the system's.
const FontDirEnv = "ORDERSEAL_FONT_DIR"

// cjkDirs are where Debian's fonts-noto-cjk (and other distributions'
// packages of it) put the collections.
var cjkDirs = []string{
	"/usr/share/fonts/opentype/noto",
	"/usr/share/fonts/noto-cjk",
	"/usr/share/fonts/google-noto-cjk",
	"/usr/share/fonts/truetype/noto",
	"/usr/share/fonts/noto",
}

// cjkFiles are the collections' file names, regular and bold.
var cjkFiles = [2][]string{
	{"NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf"},
	{"NotoSansCJK-Bold.ttc", "NotoSansCJKsc-Bold.otf"},
}

// typeface is one font of the label: the Go fonts for what they cover,
// Noto Sans CJK in a language's variant for the rest.
type typeface struct {
	name string
	f    *sfnt.Font
	of   *opentype.Font
}

// covers reports whether the font has a glyph for every rune of s but
// spaces and controls.
func (t *typeface) covers(s string) bool {
	var buf sfnt.Buffer
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			continue
		}
		if i, err := t.f.GlyphIndex(&buf, r); err != nil || i == 0 {
			return false
		}
	}
	return true
}

var goFonts = sync.OnceValues(func() ([2]*typeface, error) {
	var out [2]*typeface
	for i, ttf := range [][]byte{goregular.TTF, gobold.TTF} {
		f, err := opentype.Parse(ttf)
		if err != nil {
			return out, err
		}
		out[i] = &typeface{name: [2]string{"Go Regular", "Go Bold"}[i], f: f, of: f}
	}
	return out, nil
})

// cjkSet is Noto Sans CJK, regular and bold, by language variant
// ("KR", "JP", "SC", "TC", "HK").
type cjkSet struct {
	faces [2]map[string]*typeface
	paths [2]string
}

var cjkFonts = sync.OnceValues(loadCJK)

// CJKFontPaths returns the Noto Sans CJK files the label renders with, or
// an error saying where it looked.
func CJKFontPaths() ([2]string, error) {
	set, err := cjkFonts()
	if err != nil {
		return [2]string{}, err
	}
	return set.paths, nil
}

func loadCJK() (*cjkSet, error) {
	var dirs []string
	if env := os.Getenv(FontDirEnv); env != "" {
		dirs = append(dirs, filepath.SplitList(env)...)
	}
	dirs = append(dirs, cjkDirs...)
	set := &cjkSet{}
	for w := range 2 {
		set.faces[w] = map[string]*typeface{}
		for _, d := range dirs {
			for _, name := range cjkFiles[w] {
				p := filepath.Join(d, name)
				data, err := os.ReadFile(p)
				if err != nil {
					continue
				}
				if err := set.add(w, data); err != nil {
					return nil, fmt.Errorf("label: %s: %w", p, err)
				}
				set.paths[w] = p
				break
			}
			if set.paths[w] != "" {
				break
			}
		}
		if set.paths[w] == "" {
			return nil, fmt.Errorf("%w: Noto Sans CJK (%s) is not in %s or %s; install Debian's fonts-noto-cjk",
				ErrNoFont, cjkFiles[w][0], FontDirEnv, strings.Join(cjkDirs, ", "))
		}
	}
	return set, nil
}

// add reads a collection (or a single OpenType file) and keeps its Sans
// fonts by language: "Noto Sans CJK KR" → "KR".
func (s *cjkSet) add(w int, data []byte) error {
	var fonts []*sfnt.Font
	if c, err := opentype.ParseCollection(data); err == nil {
		for i := range c.NumFonts() {
			f, err := c.Font(i)
			if err != nil {
				return err
			}
			fonts = append(fonts, f)
		}
	} else if f, err := opentype.Parse(data); err == nil {
		fonts = append(fonts, f)
	} else {
		return err
	}
	for _, f := range fonts {
		name, err := f.Name(nil, sfnt.NameIDFamily)
		if err != nil {
			continue
		}
		lang, ok := strings.CutPrefix(name, "Noto Sans CJK ")
		if !ok {
			continue // the Mono variants
		}
		s.faces[w][lang] = &typeface{name: name, f: f, of: f}
	}
	if len(s.faces[w]) == 0 {
		return errors.New("no Noto Sans CJK font in the file")
	}
	return nil
}

// cjkLang is the Noto Sans CJK variant for text s on a parcel to country:
// Hangul is Korean, kana Japanese; Han alone follows the destination.
func cjkLang(s, country string) string {
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Hangul, r):
			return "KR"
		case unicode.In(r, unicode.Hiragana, unicode.Katakana):
			return "JP"
		}
	}
	switch country {
	case "JP":
		return "JP"
	case "KR":
		return "KR"
	case "TW":
		return "TC"
	case "HK", "MO":
		return "HK"
	}
	return "SC"
}

// faceFor picks the typeface that draws all of s: the Go font when it
// can, else Noto Sans CJK in the variant for s and country. what names the
// text in the error ("the recipient's name"), never its value.
func faceFor(s string, bold bool, country, what string) (*typeface, error) {
	w := 0
	if bold {
		w = 1
	}
	gf, err := goFonts()
	if err != nil {
		return nil, err
	}
	if gf[w].covers(s) {
		return gf[w], nil
	}
	set, err := cjkFonts()
	if err != nil {
		if needsCJK(s) {
			return nil, fmt.Errorf("%s is in %s script: %w", what, scriptOf(s), err)
		}
		return nil, fmt.Errorf("%w: %s is in %s script, which no installed font covers", ErrNoFont, what, scriptOf(s))
	}
	if t := set.faces[w][cjkLang(s, country)]; t != nil && t.covers(s) {
		return t, nil
	}
	for _, t := range set.faces[w] {
		if t.covers(s) {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: %s is in %s script, which neither the Go fonts nor Noto Sans CJK cover", ErrNoFont, what, scriptOf(s))
}

func needsCJK(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Hangul, unicode.Han, unicode.Hiragana, unicode.Katakana) {
			return true
		}
	}
	return false
}

// scripts are the scripts scriptOf names.
var scripts = []struct {
	name string
	t    *unicode.RangeTable
}{
	{"Hangul", unicode.Hangul}, {"Han", unicode.Han}, {"Hiragana", unicode.Hiragana}, {"Katakana", unicode.Katakana},
	{"Arabic", unicode.Arabic}, {"Hebrew", unicode.Hebrew}, {"Thai", unicode.Thai}, {"Devanagari", unicode.Devanagari},
	{"Bengali", unicode.Bengali}, {"Tamil", unicode.Tamil}, {"Georgian", unicode.Georgian}, {"Armenian", unicode.Armenian},
	{"Ethiopic", unicode.Ethiopic}, {"Khmer", unicode.Khmer}, {"Lao", unicode.Lao}, {"Myanmar", unicode.Myanmar},
	{"Sinhala", unicode.Sinhala}, {"Tibetan", unicode.Tibetan}, {"Cherokee", unicode.Cherokee}, {"Mongolian", unicode.Mongolian},
}

// scriptOf names the first script of s that is not Latin, Greek or
// Cyrillic ("another" when it has no name here): never the text itself.
func scriptOf(s string) string {
	for _, r := range s {
		for _, sc := range scripts {
			if unicode.Is(sc.t, r) {
				return sc.name
			}
		}
	}
	return "another"
}

// newFace is t at size pixels (the label is drawn at 72 "dpi", so a point
// is a pixel of the 203 dpi raster).
func (t *typeface) newFace(size float64) (font.Face, error) {
	return opentype.NewFace(t.of, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
}
