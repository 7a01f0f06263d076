package dht

// pingSchedule is a min-heap of contacts by nextPing. Each contact knows
// its place (heapIdx), so that one can be moved or removed: the heap never
// holds more than the contacts.
type pingSchedule []*contact

// update puts c in the schedule, or moves it after its nextPing changed.
func (h *pingSchedule) update(c *contact) {
	if c.heapIdx < 0 {
		c.heapIdx = int32(len(*h))
		*h = append(*h, c)
		h.up(int(c.heapIdx))
		return
	}
	if !h.up(int(c.heapIdx)) {
		h.down(int(c.heapIdx))
	}
}

// remove takes c out of the schedule, if it is in.
func (h *pingSchedule) remove(c *contact) {
	i := int(c.heapIdx)
	if i < 0 {
		return
	}
	s := *h
	last := len(s) - 1
	if i != last {
		s[i] = s[last]
		s[i].heapIdx = int32(i)
	}
	s[last] = nil
	*h = s[:last]
	c.heapIdx = -1
	if i != last {
		if !h.up(i) {
			h.down(i)
		}
	}
}

func (h pingSchedule) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = int32(i)
	h[j].heapIdx = int32(j)
}

// up moves element i up while it is due before its parent and reports
// whether it moved.
func (h pingSchedule) up(i int) bool {
	moved := false
	for i > 0 {
		parent := (i - 1) / 2
		if h[i].nextPing >= h[parent].nextPing {
			break
		}
		h.swap(i, parent)
		i = parent
		moved = true
	}
	return moved
}

func (h pingSchedule) down(i int) {
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].nextPing < h[m].nextPing {
			m = l
		}
		if r < len(h) && h[r].nextPing < h[m].nextPing {
			m = r
		}
		if m == i {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// pingDue pings the contacts that have been silent for PingInterval.
func (t *Table) pingDue() {
	for len(t.schedule) > 0 && t.schedule[0].nextPing <= t.nowNs {
		c := t.schedule[0]
		if _, busy := t.pingAddr[c.addr]; busy || len(t.pending) >= maxPending {
			// Its answer or timeout comes first; look again then.
			c.nextPing = t.nowNs + int64(t.cfg.RequestTimeout)
			t.schedule.update(c)
			continue
		}
		t.schedule.remove(c) // the answer or the timeout reschedules it
		t.ping(c.addr, c.id)
	}
}
