package chart

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// One font, Go Regular, parsed once: the only font data in the binary.
var goRegular = sync.OnceValues(func() (*opentype.Font, error) {
	return opentype.Parse(goregular.TTF)
})

// dpi makes a point 4/3 of a pixel, as on a screen.
const dpi = 96

// faces are the sizes of text a chart uses. A face caches glyphs and is
// not safe for concurrent use, so each drawing makes its own.
type faces struct {
	title, label, tick font.Face
}

func newFaces() (*faces, error) {
	f, err := goRegular()
	if err != nil {
		return nil, fmt.Errorf("chart: the font: %w", err)
	}
	face := func(points float64) (font.Face, error) {
		return opentype.NewFace(f, &opentype.FaceOptions{Size: points, DPI: dpi, Hinting: font.HintingNone})
	}
	var fs faces
	for _, s := range []struct {
		face   *font.Face
		points float64
	}{{&fs.title, 12}, {&fs.label, 11}, {&fs.tick, 10}} {
		if *s.face, err = face(s.points); err != nil {
			return nil, fmt.Errorf("chart: the font: %w", err)
		}
	}
	return &fs, nil
}

// textWidth is the advance of s in whole pixels.
func textWidth(f font.Face, s string) int {
	return font.MeasureString(f, s).Ceil()
}

// lineHeight is the distance between two lines of f in whole pixels.
func lineHeight(f font.Face) int {
	return f.Metrics().Height.Ceil()
}

// drawText writes s with its top left corner at (x, y).
func drawText(dst draw.Image, f font.Face, s string, x, y int, c color.Color) {
	d := font.Drawer{Dst: dst, Src: image.NewUniform(c), Face: f,
		Dot: fixed.P(x, y+f.Metrics().Ascent.Ceil())}
	d.DrawString(s)
}

// drawTextUp writes s turned a quarter left (reading upwards), its
// unturned top left corner at (x, y+width): the text runs from the bottom
// (x, y+width) to the top (x, y) of its box.
func drawTextUp(dst draw.Image, f font.Face, s string, x, y int, c color.Color) {
	w, h := textWidth(f, s), lineHeight(f)
	flat := image.NewAlpha(image.Rect(0, 0, w, h))
	drawText(flat, f, s, 0, 0, color.Opaque)
	up := image.NewAlpha(image.Rect(0, 0, h, w))
	for fy := 0; fy < h; fy++ {
		for fx := 0; fx < w; fx++ {
			up.Pix[(w-1-fx)*up.Stride+fy] = flat.Pix[fy*flat.Stride+fx]
		}
	}
	draw.DrawMask(dst, image.Rect(x, y, x+h, y+w), image.NewUniform(c), image.Point{}, up, image.Point{}, draw.Over)
}
