package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// sseEvent is one event of a text/event-stream.
type sseEvent struct {
	// ID is the stream's last event ID when the event was dispatched: set by
	// this event's id field or carried over from an earlier event.
	ID string
	// Event is the event type; "message" when the event names none.
	Event string
	// Data is the event's data lines joined with "\n".
	Data string
}

// errSSETooLong reports a line or an event larger than the reader's bound.
var errSSETooLong = errors.New("event stream: line or event longer than the limit")

// sseReader parses a text/event-stream as the HTML standard's
// "Interpreting an event stream" says: lines end with CRLF, LF or CR; a
// line starting with ':' is a comment; "field: value" lines (one space after
// the colon is dropped) build an event; a blank line dispatches it, unless
// it has no data. Unknown fields, and "retry", are ignored.
type sseReader struct {
	r        *bufio.Reader
	maxBytes int
	line     []byte
	skipLF   bool   // the last line ended with CR: an LF right after belongs to it
	started  bool   // past the optional byte order mark
	lastID   string // the last event ID buffer; it outlives events
	data     bytes.Buffer
	evType   string
	pendingN int // bytes of the event being built, bounded by maxBytes
}

// newSSEReader reads events from r. maxBytes bounds a line and an event, so
// that a misbehaving server cannot make the reader grow without limit.
func newSSEReader(r io.Reader, maxBytes int) *sseReader {
	return &sseReader{r: bufio.NewReader(r), maxBytes: maxBytes}
}

// Next returns the next event. At the end of the stream it returns io.EOF,
// dropping an event that no blank line ended, as the standard requires.
func (s *sseReader) Next() (sseEvent, error) {
	for {
		line, err := s.readLine()
		if err != nil {
			s.reset()
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if s.data.Len() == 0 {
				s.reset() // an event without data is not dispatched
				continue
			}
			ev := sseEvent{ID: s.lastID, Event: s.evType, Data: strings.TrimSuffix(s.data.String(), "\n")}
			if ev.Event == "" {
				ev.Event = "message"
			}
			s.reset()
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		s.pendingN += len(line)
		if s.pendingN > s.maxBytes {
			s.reset()
			return sseEvent{}, errSSETooLong
		}
		field, val, found := bytes.Cut(line, []byte(":"))
		if found {
			val = bytes.TrimPrefix(val, []byte(" "))
		}
		switch string(field) {
		case "event":
			s.evType = string(val)
		case "data":
			s.data.Write(val)
			s.data.WriteByte('\n')
		case "id":
			if bytes.IndexByte(val, 0) < 0 {
				s.lastID = string(val)
			}
		}
	}
}

func (s *sseReader) reset() {
	s.data.Reset()
	s.evType = ""
	s.pendingN = 0
}

// readLine returns the next line without its ending. The slice is valid
// until the next call.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			return nil, err // a last line without an ending is incomplete: dropped
		}
		if s.skipLF {
			s.skipLF = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\r':
			s.skipLF = true
			return s.stripBOM(), nil
		case '\n':
			return s.stripBOM(), nil
		}
		if len(s.line) >= s.maxBytes {
			return nil, errSSETooLong
		}
		s.line = append(s.line, b)
	}
}

// stripBOM drops the UTF-8 byte order mark a stream may start with.
func (s *sseReader) stripBOM() []byte {
	if !s.started {
		s.started = true
		return bytes.TrimPrefix(s.line, []byte("\uFEFF"))
	}
	return s.line
}
