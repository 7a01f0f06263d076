// Package chart draws line charts as PNG: two linear axes with ticks, a
// grid, a title, a legend, and series drawn as solid or dashed lines with
// optional circle markers. It is what the simulator's charts need and no
// more, so that the binary carries one small font instead of a plotting
// library's dozen.
//
// Rendering is deterministic: the same Chart gives the same PNG bytes.
package chart

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
)

// Point is a data point.
type Point struct{ X, Y float64 }

// Tick is a labelled mark on an axis, at Value in data units.
type Tick struct {
	Value float64
	Label string
}

// Axis is a linear axis from Min to Max. When Min == Max the range is taken
// from the data. When Ticks is nil, evenly spaced round values are marked.
type Axis struct {
	Label    string
	Min, Max float64
	Ticks    []Tick
}

// Series is a line through Points, in order. Width is the line's width in
// pixels (0 draws no line); Dashes, if set, alternate the lengths in pixels
// of drawn and skipped stretches; Marker, if positive, is the radius in
// pixels of a filled circle drawn at each point. A series with a Label
// gets a legend entry; the legend lists the series from the last drawn
// (on top) to the first.
type Series struct {
	Label  string
	Points []Point
	Color  color.RGBA
	Width  float64
	Dashes []float64
	Marker float64
}

// Chart is a whole chart. Title may hold several lines separated by "\n".
// Width and Height are the image's size in pixels.
type Chart struct {
	Title         string
	Width, Height int
	X, Y          Axis
	Series        []Series
}

// Smallest image a chart is drawn on: below it the margins leave no plot.
const minWidth, minHeight = 200, 150

// WritePNG draws the chart and writes it to w as a PNG.
func (c *Chart) WritePNG(w io.Writer) error {
	img, err := c.Draw()
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

// Draw draws the chart on a new image.
func (c *Chart) Draw() (*image.RGBA, error) {
	if c.Width < minWidth || c.Height < minHeight {
		return nil, fmt.Errorf("chart: size %dx%d is below %dx%d", c.Width, c.Height, minWidth, minHeight)
	}
	x, err := c.X.resolve(c.Series, func(p Point) float64 { return p.X })
	if err != nil {
		return nil, fmt.Errorf("chart: x axis: %w", err)
	}
	y, err := c.Y.resolve(c.Series, func(p Point) float64 { return p.Y })
	if err != nil {
		return nil, fmt.Errorf("chart: y axis: %w", err)
	}
	for i, s := range c.Series {
		if s.Width < 0 || s.Marker < 0 {
			return nil, fmt.Errorf("chart: series %d (%q): negative width or marker", i, s.Label)
		}
		for _, d := range s.Dashes {
			if !(d > 0) {
				return nil, fmt.Errorf("chart: series %d (%q): dash lengths must be positive", i, s.Label)
			}
		}
	}
	f, err := newFaces()
	if err != nil {
		return nil, err
	}
	return render(c, x, y, f), nil
}

// resolve returns a copy of a with its range and ticks filled in.
func (a Axis) resolve(series []Series, coord func(Point) float64) (Axis, error) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			v := coord(p)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return a, fmt.Errorf("series %q has a non-finite point", s.Label)
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsNaN(a.Min) || math.IsNaN(a.Max) || math.IsInf(a.Min, 0) || math.IsInf(a.Max, 0) {
		return a, errors.New("non-finite range")
	}
	if a.Min == a.Max {
		if lo > hi { // no points
			lo, hi = 0, 1
		}
		a.Min, a.Max = lo, hi
		if a.Min == a.Max {
			a.Min, a.Max = a.Min-0.5, a.Max+0.5
		}
	}
	if a.Min > a.Max {
		return a, fmt.Errorf("min %g above max %g", a.Min, a.Max)
	}
	if a.Ticks == nil {
		a.Ticks = NiceTicks(a.Min, a.Max)
	}
	return a, nil
}

// NiceTicks marks round values (1, 2 or 5 times a power of ten apart)
// between min and max, at most ten steps apart.
func NiceTicks(min, max float64) []Tick {
	if !(max > min) {
		return []Tick{{Value: min, Label: formatTick(min, 1)}}
	}
	step := math.Pow(10, math.Floor(math.Log10(max-min))-1)
	for k := 0; (max-min)/step > 10; k++ {
		step *= []float64{2, 2.5, 2}[k%3] // 1, 2, 5, 10, 20, 50, ...
	}
	var ticks []Tick
	for k := math.Ceil(min/step - 1e-9); k*step <= max+step*1e-9; k++ {
		v := k * step
		if v == 0 {
			v = 0 // no "-0"
		}
		ticks = append(ticks, Tick{Value: v, Label: formatTick(v, step)})
	}
	return ticks
}

// formatTick writes v with as many decimals as the step between ticks needs.
func formatTick(v, step float64) string {
	decimals := 0
	for s := step; decimals < 6 && math.Abs(s-math.Round(s)) > 1e-9*math.Max(1, math.Abs(s)); s *= 10 {
		decimals++
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}
