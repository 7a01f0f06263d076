package chart

import (
	"image"
	"image/color"
	"math"
	"slices"

	"golang.org/x/image/vector"
)

// pen fills shapes on an image, antialiased. Every shape it adds winds the
// same way, so overlapping ones (the pieces of a line and its joins) add
// up to full coverage instead of cancelling out.
type pen struct {
	dst *image.RGBA
	z   *vector.Rasterizer
}

func newPen(dst *image.RGBA) *pen {
	b := dst.Bounds()
	return &pen{dst: dst, z: vector.NewRasterizer(b.Dx(), b.Dy())}
}

// fill paints what was added since the last fill in c.
func (p *pen) fill(c color.RGBA) {
	p.z.Draw(p.dst, p.dst.Bounds(), image.NewUniform(c), image.Point{})
	b := p.dst.Bounds()
	p.z.Reset(b.Dx(), b.Dy())
}

type xy struct{ x, y float64 }

// polygon adds a closed polygon. Its points must wind like every other
// shape of the pen: their shoelace area, in pixel coordinates, negative.
func (p *pen) polygon(pts ...xy) {
	p.z.MoveTo(float32(pts[0].x), float32(pts[0].y))
	for _, q := range pts[1:] {
		p.z.LineTo(float32(q.x), float32(q.y))
	}
	p.z.ClosePath()
}

// circle adds a disc of radius r around c.
func (p *pen) circle(c xy, r float64) {
	n := max(16, int(4*r))
	pts := make([]xy, n)
	for i := range pts {
		a := -2 * math.Pi * float64(i) / float64(n)
		pts[i] = xy{c.x + r*math.Cos(a), c.y + r*math.Sin(a)}
	}
	p.polygon(pts...)
}

// rect adds the rectangle from (x0, y0) to (x1, y1).
func (p *pen) rect(x0, y0, x1, y1 float64) {
	p.polygon(xy{x0, y0}, xy{x0, y1}, xy{x1, y1}, xy{x1, y0})
}

// line adds a line of the given width through pts, with round joins and
// flat ends; with dashes, only its stretches alternately drawn.
func (p *pen) line(pts []xy, width float64, dashes []float64) {
	if len(dashes) == 0 {
		p.solid(pts, width)
		return
	}
	dash, left, on := 0, dashes[0], true
	piece := []xy{pts[0]}
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		seg, pos := math.Hypot(b.x-a.x, b.y-a.y), 0.0
		for seg-pos > left {
			pos += left
			cut := xy{a.x + (b.x-a.x)*pos/seg, a.y + (b.y-a.y)*pos/seg}
			if on {
				p.solid(append(piece, cut), width)
			}
			piece, on = []xy{cut}, !on
			dash = (dash + 1) % len(dashes)
			left = dashes[dash]
		}
		left -= seg - pos
		piece = append(piece, b)
	}
	if on {
		p.solid(piece, width)
	}
}

// solid adds a line through pts without gaps.
func (p *pen) solid(pts []xy, width float64) {
	h := width / 2
	// A repeated point would put a join where the line has none.
	pts = slices.Compact(slices.Clone(pts))
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		l := math.Hypot(b.x-a.x, b.y-a.y)
		// n is perpendicular to a→b, half the width long.
		n := xy{-(b.y - a.y) / l * h, (b.x - a.x) / l * h}
		p.polygon(xy{a.x + n.x, a.y + n.y}, xy{b.x + n.x, b.y + n.y}, xy{b.x - n.x, b.y - n.y}, xy{a.x - n.x, a.y - n.y})
		if i < len(pts)-1 {
			p.circle(b, h)
		}
	}
}

// clip cuts the line through pts to the rectangle r, giving the runs of it
// inside (Liang–Barsky on each segment).
func clip(pts []xy, r rect) [][]xy {
	var runs [][]xy
	var run []xy
	for i := 1; i < len(pts); i++ {
		a, b, ok := clipSegment(pts[i-1], pts[i], r)
		if !ok {
			if len(run) > 0 {
				runs, run = append(runs, run), nil
			}
			continue
		}
		if len(run) == 0 || run[len(run)-1] != a {
			if len(run) > 0 {
				runs = append(runs, run)
			}
			run = []xy{a}
		}
		run = append(run, b)
	}
	if len(run) > 0 {
		runs = append(runs, run)
	}
	return runs
}

// rect is a rectangle in pixels, its corners in floating point.
type rect struct{ x0, y0, x1, y1 float64 }

func clipSegment(a, b xy, r rect) (xy, xy, bool) {
	t0, t1 := 0.0, 1.0
	dx, dy := b.x-a.x, b.y-a.y
	for _, e := range [4][2]float64{{-dx, a.x - r.x0}, {dx, r.x1 - a.x}, {-dy, a.y - r.y0}, {dy, r.y1 - a.y}} {
		p, q := e[0], e[1]
		if p == 0 {
			if q < 0 {
				return a, b, false
			}
			continue
		}
		t := q / p
		if p < 0 {
			t0 = max(t0, t)
		} else {
			t1 = min(t1, t)
		}
	}
	if t0 > t1 {
		return a, b, false
	}
	return xy{a.x + t0*dx, a.y + t0*dy}, xy{a.x + t1*dx, a.y + t1*dy}, true
}
