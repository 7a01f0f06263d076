package chart

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"strings"

	"golang.org/x/image/font"
)

// The chart's fixed look, in pixels.
const (
	pad        = 10 // around the whole chart and between its parts
	tickLength = 5
	legendLine = 32 // the sample line of a legend entry
)

var (
	white     = color.RGBA{R: 255, G: 255, B: 255, A: 255}
	black     = color.RGBA{A: 255}
	axisColor = color.RGBA{R: 60, G: 60, B: 60, A: 255}
	gridColor = color.RGBA{R: 222, G: 222, B: 222, A: 255}
	boxColor  = color.RGBA{R: 200, G: 200, B: 200, A: 255}
	// The legend's box lets the lines under it show through, faintly.
	boxFill = color.RGBA{R: 225, G: 225, B: 225, A: 225}
)

// render lays the chart out and draws it; x and y are its resolved axes.
func render(c *Chart, x, y Axis, f *faces) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, c.Width, c.Height))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	p := newPen(img)

	// Layout, from the outside in.
	var title []string
	if c.Title != "" {
		for _, line := range strings.Split(c.Title, "\n") {
			title = append(title, wrap(f.title, line, c.Width-2*pad)...)
		}
	}
	top := pad + len(title)*lineHeight(f.title) + pad/2
	yTickWidth := 0
	for _, t := range y.Ticks {
		yTickWidth = max(yTickWidth, textWidth(f.tick, t.Label))
	}
	left := pad + tickLength + pad/2 + yTickWidth
	if y.Label != "" {
		left += lineHeight(f.label) + pad/2
	}
	bottom := c.Height - pad - tickLength - pad/2 - lineHeight(f.tick)
	if x.Label != "" {
		bottom -= lineHeight(f.label)
	}
	right := c.Width - pad
	if n := len(x.Ticks); n > 0 {
		right -= textWidth(f.tick, x.Ticks[n-1].Label) / 2
	}
	plot := rect{float64(left), float64(top), float64(right), float64(bottom)}
	toX := func(v float64) float64 {
		return plot.x0 + (v-x.Min)/(x.Max-x.Min)*(plot.x1-plot.x0)
	}
	toY := func(v float64) float64 {
		return plot.y1 - (v-y.Min)/(y.Max-y.Min)*(plot.y1-plot.y0)
	}
	// A crisp one-pixel line lies on a pixel's middle.
	crisp := func(v float64) float64 { return math.Floor(v) + 0.5 }

	// The grid, under everything.
	for _, t := range x.Ticks {
		if t.Value >= x.Min && t.Value <= x.Max {
			gx := crisp(toX(t.Value))
			p.line([]xy{{gx, plot.y0}, {gx, plot.y1}}, 1, nil)
		}
	}
	for _, t := range y.Ticks {
		if t.Value >= y.Min && t.Value <= y.Max {
			gy := crisp(toY(t.Value))
			p.line([]xy{{plot.x0, gy}, {plot.x1, gy}}, 1, nil)
		}
	}
	p.fill(gridColor)

	// The series, in order, each clipped to the plot.
	for _, s := range c.Series {
		pts := make([]xy, len(s.Points))
		for i, q := range s.Points {
			pts[i] = xy{toX(q.X), toY(q.Y)}
		}
		if s.Width > 0 && len(pts) > 1 {
			for _, run := range clip(pts, plot) {
				p.line(run, s.Width, s.Dashes)
			}
			p.fill(s.Color)
		}
		if s.Marker > 0 {
			for _, q := range pts {
				if q.x >= plot.x0 && q.x <= plot.x1 && q.y >= plot.y0 && q.y <= plot.y1 {
					p.circle(q, s.Marker)
				}
			}
			p.fill(s.Color)
		}
	}

	// The axes, their ticks and labels.
	ax, ay := crisp(plot.x0-1), crisp(plot.y1)
	p.line([]xy{{ax, plot.y0}, {ax, ay}, {plot.x1, ay}}, 1, nil)
	tickY := bottom + tickLength + pad/2
	for _, t := range x.Ticks {
		if t.Value < x.Min || t.Value > x.Max {
			continue
		}
		tx := crisp(toX(t.Value))
		p.line([]xy{{tx, ay}, {tx, ay + tickLength}}, 1, nil)
		drawText(img, f.tick, t.Label, int(tx)-textWidth(f.tick, t.Label)/2, tickY, black)
	}
	for _, t := range y.Ticks {
		if t.Value < y.Min || t.Value > y.Max {
			continue
		}
		ty := crisp(toY(t.Value))
		p.line([]xy{{ax - tickLength, ty}, {ax, ty}}, 1, nil)
		drawText(img, f.tick, t.Label, left-tickLength-pad/2-textWidth(f.tick, t.Label), int(ty)-lineHeight(f.tick)/2, black)
	}
	p.fill(axisColor)
	middleX := (left + right) / 2
	if x.Label != "" {
		drawText(img, f.label, x.Label, middleX-textWidth(f.label, x.Label)/2, tickY+lineHeight(f.tick), black)
	}
	if y.Label != "" {
		w := textWidth(f.label, y.Label)
		drawTextUp(img, f.label, y.Label, pad, (top+bottom)/2-w/2, black)
	}
	for i, line := range title {
		drawText(img, f.title, line, c.Width/2-textWidth(f.title, line)/2, pad+i*lineHeight(f.title), black)
	}

	legend(img, p, c.Series, f, plot)
	return img
}

// wrap breaks line after commas into lines no wider than width, where it
// can: a stretch without a comma wider than width stays whole.
func wrap(f font.Face, line string, width int) []string {
	var lines []string
	for textWidth(f, line) > width {
		cut := -1
		for i := strings.Index(line, ", "); i >= 0 && textWidth(f, line[:i+1]) <= width; {
			cut = i
			next := strings.Index(line[i+2:], ", ")
			if next < 0 {
				break
			}
			i += 2 + next
		}
		if cut < 0 {
			break
		}
		lines = append(lines, line[:cut+1])
		line = line[cut+2:]
	}
	return append(lines, line)
}

// ink counts the pixels of r that something other than the background and
// the grid was drawn on.
func ink(img *image.RGBA, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if c := img.RGBAAt(x, y); c != white && c != gridColor {
				n++
			}
		}
	}
	return n
}

// legend draws, on a light box in the corner of the plot where it hides
// the least of the series, a line per labelled series: a sample of its
// line and marker, then its label. It lists them from the last drawn, on
// top, to the first.
func legend(img *image.RGBA, p *pen, series []Series, f *faces, plot rect) {
	var entries []Series
	width := 0
	for i := len(series) - 1; i >= 0; i-- {
		if s := series[i]; s.Label != "" {
			entries = append(entries, s)
			width = max(width, textWidth(f.label, s.Label))
		}
	}
	if len(entries) == 0 {
		return
	}
	lh := lineHeight(f.label)
	w, h := pad+legendLine+pad/2+width+pad, pad/2+len(entries)*lh+pad/2
	// The corners in order of preference: curves that start at the
	// bottom leave the top left empty.
	x0, y0, x1, y1 := int(plot.x0)+pad, int(plot.y0)+pad, int(plot.x1)-pad-w, int(plot.y1)-pad-h
	x, y, least := x0, y0, -1
	for _, corner := range []image.Point{{x0, y0}, {x1, y1}, {x1, y0}, {x0, y1}} {
		if n := ink(img, image.Rect(corner.X, corner.Y, corner.X+w, corner.Y+h)); least < 0 || n < least {
			x, y, least = corner.X, corner.Y, n
		}
	}
	box := rect{float64(x), float64(y), float64(x + w), float64(y + h)}
	p.rect(box.x0, box.y0, box.x1, box.y1)
	p.fill(boxFill)
	b := rect{box.x0 + 0.5, box.y0 + 0.5, box.x1 - 0.5, box.y1 - 0.5}
	p.line([]xy{{b.x0, b.y0}, {b.x1, b.y0}, {b.x1, b.y1}, {b.x0, b.y1}, {b.x0, b.y0}}, 1, nil)
	p.fill(boxColor)
	for i, s := range entries {
		top := y + pad/2 + i*lh
		mid := float64(top) + float64(lh)/2
		x0, x1 := float64(x+pad), float64(x+pad+legendLine)
		if s.Width > 0 {
			p.line([]xy{{x0, mid}, {x1, mid}}, s.Width, s.Dashes)
			p.fill(s.Color)
		}
		if s.Marker > 0 {
			p.circle(xy{(x0 + x1) / 2, mid}, s.Marker)
			p.fill(s.Color)
		}
		drawText(img, f.label, s.Label, x+pad+legendLine+pad/2, top, black)
	}
}
