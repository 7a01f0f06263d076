package gossip

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The wait on a hint follows a slower path at once and a faster one
// slowly, within its bounds; until a sample comes it is the longest.
func TestLatenessWait(t *testing.T) {
	const least, most = 40 * time.Millisecond, 200 * time.Millisecond
	var l lateness
	assert.Equal(t, most, l.wait(least, most), "nothing known: an Interval, as before")
	t0 := time.Unix(1000, 0)
	l.observe(t0, t0.Add(time.Millisecond))
	assert.Equal(t, least, l.wait(least, most), "a fast network: the least")
	l.observe(t0, t0.Add(60*time.Millisecond))
	assert.Equal(t, 120*time.Millisecond, l.wait(least, most), "a slower path: at once")
	l.observe(t0, t0.Add(time.Millisecond))
	assert.Equal(t, 2*(60*time.Millisecond-60*time.Millisecond/8), l.wait(least, most), "a faster one: an eighth less")
	l.observe(t0, t0.Add(time.Second))
	assert.Equal(t, most, l.wait(least, most), "at most an Interval")
	l.observe(t0.Add(time.Second), t0)
	assert.Equal(t, most, l.wait(least, most), "a negative sample counts as none late")
	for range 100 {
		l.observe(t0, t0)
	}
	assert.Equal(t, least, l.wait(least, most))
}
