package chart

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	blue  = color.RGBA{R: 20, G: 80, B: 200, A: 255}
	green = color.RGBA{R: 30, G: 150, B: 60, A: 255}
)

func sample() *Chart {
	return &Chart{
		Title:  "a title\nits second line",
		Width:  864,
		Height: 528,
		X:      Axis{Label: "round", Min: 0, Max: 7},
		Y:      Axis{Label: "fraction delivered", Min: 0, Max: 1.02},
		Series: []Series{
			{Label: "dashed", Points: []Point{{0, 0}, {3, 0.9}, {7, 1}}, Color: green, Width: 2, Dashes: []float64{8, 4}},
			{Label: "solid with markers", Points: []Point{{0, 0}, {1, 0.1}, {2, 0.5}, {4, 1}}, Color: blue, Width: 2.5, Marker: 3.5},
		},
	}
}

func TestChartDraws(t *testing.T) {
	c := sample()
	img, err := c.Draw()
	require.NoError(t, err)
	assert.Equal(t, 864, img.Bounds().Dx())
	assert.Equal(t, 528, img.Bounds().Dy())

	var out bytes.Buffer
	require.NoError(t, c.WritePNG(&out))
	if dir := os.Getenv("CHART_DEMO"); dir != "" {
		require.NoError(t, os.WriteFile(dir+"/sample.png", out.Bytes(), 0o644))
	}
	decoded, err := png.Decode(&out)
	require.NoError(t, err)
	assert.Equal(t, img.Bounds(), decoded.Bounds())
}

func TestChartIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	require.NoError(t, sample().WritePNG(&a))
	require.NoError(t, sample().WritePNG(&b))
	assert.Equal(t, a.Bytes(), b.Bytes(), "the same chart gives the same bytes")

	other := sample()
	other.Series[1].Points[2].Y = 0.6
	var c bytes.Buffer
	require.NoError(t, other.WritePNG(&c))
	assert.NotEqual(t, a.Bytes(), c.Bytes(), "another point gives another image")
}

func TestChartDrawsItsParts(t *testing.T) {
	c := sample()
	c.Title, c.X.Label, c.Y.Label = "", "", ""
	c.Series = []Series{{Points: []Point{{0, 0.5}, {7, 0.5}}, Color: blue, Width: 4}}
	img, err := c.Draw()
	require.NoError(t, err)
	// The line across the middle of the plot is its colour throughout,
	// right of the axis and left of the plot's end.
	mid := img.Bounds().Dy() / 2
	row := -1
	for y := mid - 40; y < mid+40 && row < 0; y++ {
		if img.RGBAAt(img.Bounds().Dx()/2, y) == blue {
			row = y
		}
	}
	require.NotEqual(t, -1, row, "no line in the middle of the chart")
	for x := 100; x < img.Bounds().Dx()-40; x++ {
		assert.Equal(t, blue, img.RGBAAt(x, row+1), "x=%d", x)
	}
	// Corners stay white.
	assert.Equal(t, white, img.RGBAAt(1, 1))
	assert.Equal(t, white, img.RGBAAt(img.Bounds().Dx()-2, img.Bounds().Dy()-2))
}

func TestDashesLeaveGaps(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 100, 10))
	p := newPen(img)
	p.line([]xy{{0, 5}, {50, 5}, {100, 5}}, 4, []float64{10, 10})
	p.fill(blue)
	var on []bool
	for x := 0; x < 100; x++ {
		on = append(on, img.RGBAAt(x, 5) == blue)
	}
	for x := 0; x < 100; x++ {
		// Pixel x covers [x, x+1): inside a dash when x mod 20 < 10,
		// across a join between segments included.
		assert.Equal(t, x%20 < 10, on[x], "x=%d", x)
	}
}

func TestJoinsDoNotCancel(t *testing.T) {
	// A line that turns back on itself overlaps its own pieces and joins:
	// they must add up, not leave holes.
	img := image.NewRGBA(image.Rect(0, 0, 60, 60))
	p := newPen(img)
	p.line([]xy{{10, 30}, {50, 30}, {30, 30.5}, {30, 10}, {30, 50}}, 6, nil)
	p.fill(blue)
	for _, q := range []image.Point{{30, 30}, {49, 30}, {30, 11}, {30, 49}, {15, 30}} {
		assert.Equal(t, blue, img.RGBAAt(q.X, q.Y), "%v", q)
	}
}

func TestClip(t *testing.T) {
	r := rect{0, 0, 10, 10}
	runs := clip([]xy{{-5, 5}, {5, 5}, {5, 15}, {15, 15}, {15, 5}, {8, 5}}, r)
	assert.Equal(t, [][]xy{{{0, 5}, {5, 5}, {5, 10}}, {{10, 5}, {8, 5}}}, runs)
	assert.Empty(t, clip([]xy{{-1, -1}, {-1, 20}}, r))
}

func TestNiceTicks(t *testing.T) {
	labels := func(ts []Tick) []string {
		var s []string
		for _, t := range ts {
			s = append(s, t.Label)
		}
		return s
	}
	assert.Equal(t, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}, labels(NiceTicks(0, 1.02)))
	assert.Equal(t, []string{"0", "200", "400", "600", "800", "1000", "1200"}, labels(NiceTicks(0, 1200)))
	assert.Equal(t, []string{"-10", "-5", "0", "5", "10"}, labels(NiceTicks(-12, 12)))
	assert.Equal(t, []string{"0.0000", "0.0005", "0.0010"}, labels(NiceTicks(0, 0.005))[:3])
	assert.Len(t, NiceTicks(3, 3), 1)
}

func TestChartRefusesBadInput(t *testing.T) {
	for name, bad := range map[string]func(*Chart){
		"small":      func(c *Chart) { c.Width = 10 },
		"NaN point":  func(c *Chart) { c.Series[0].Points[1].Y = math.NaN() },
		"inf point":  func(c *Chart) { c.Series[0].Points[1].X = math.Inf(1) },
		"min > max":  func(c *Chart) { c.Y.Min, c.Y.Max = 2, 1 },
		"NaN range":  func(c *Chart) { c.X.Max = math.NaN() },
		"zero dash":  func(c *Chart) { c.Series[0].Dashes = []float64{3, 0} },
		"neg width":  func(c *Chart) { c.Series[0].Width = -1 },
		"neg marker": func(c *Chart) { c.Series[1].Marker = -1 },
	} {
		c := sample()
		bad(c)
		_, err := c.Draw()
		assert.Error(t, err, name)
	}
}

func TestChartRangeFromData(t *testing.T) {
	c := sample()
	c.X = Axis{}
	c.Y = Axis{}
	x, err := c.X.resolve(c.Series, func(p Point) float64 { return p.X })
	require.NoError(t, err)
	assert.Equal(t, 0.0, x.Min)
	assert.Equal(t, 7.0, x.Max)
	c.Series = nil
	_, err = c.Draw()
	assert.NoError(t, err, "an empty chart still draws its axes")
}

func TestLongTitlesWrapAtCommas(t *testing.T) {
	f, err := newFaces()
	require.NoError(t, err)
	line := "hearsay pull gossip: 10000 nodes, fanout 3, interval 200ms, loss 0%, peers dht:bootstrap=1,warmup=10s,pool=16,ping=30s,k=8"
	lines := wrap(f.title, line, 600)
	require.Len(t, lines, 2)
	assert.Equal(t, "hearsay pull gossip: 10000 nodes, fanout 3, interval 200ms, loss 0%,", lines[0])
	assert.Equal(t, "peers dht:bootstrap=1,warmup=10s,pool=16,ping=30s,k=8", lines[1])
	for _, l := range lines {
		assert.LessOrEqual(t, textWidth(f.title, l), 600)
	}
	assert.Equal(t, []string{"short"}, wrap(f.title, "short", 600))
	assert.Equal(t, []string{"averyveryverylongwordwithoutcommas"}, wrap(f.title, "averyveryverylongwordwithoutcommas", 50))
}

// A legend or series larger than the chart is cut at its edges, not a
// crash.
func TestChartCutsWhatDoesNotFit(t *testing.T) {
	c := sample()
	c.Width, c.Height = minWidth, minHeight
	c.Title = strings.Repeat("a title far wider than the chart, ", 5)
	for i := range 12 {
		c.Series = append(c.Series, Series{Label: strings.Repeat("a long legend entry ", 4) + strconv.Itoa(i),
			Points: []Point{{-100, -5}, {3, 0.5}, {100, 50}}, Color: blue, Width: 30, Dashes: []float64{1e6}, Marker: 40})
	}
	img, err := c.Draw()
	require.NoError(t, err)
	assert.Equal(t, minWidth, img.Bounds().Dx())
}
