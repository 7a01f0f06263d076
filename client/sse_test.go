package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readAllEvents reads events until the stream ends and returns them with the
// error that ended it.
func readAllEvents(r io.Reader, maxBytes int) ([]sseEvent, error) {
	events := newSSEReader(r, maxBytes)
	var got []sseEvent
	for {
		ev, err := events.Next()
		if err != nil {
			return got, err
		}
		got = append(got, ev)
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []sseEvent
	}{
		{
			name:   "one event as the API writes it",
			stream: "id: 01ab\nevent: message\ndata: {\"id\":\"01ab\"}\n\n",
			want:   []sseEvent{{ID: "01ab", Event: "message", Data: `{"id":"01ab"}`}},
		},
		{
			name:   "no event type means message",
			stream: "data: x\n\n",
			want:   []sseEvent{{Event: "message", Data: "x"}},
		},
		{
			name:   "data lines are joined with newlines",
			stream: "data: one\ndata: two\ndata:\ndata: four\n\n",
			want:   []sseEvent{{Event: "message", Data: "one\ntwo\n\nfour"}},
		},
		{
			name:   "comments and keep-alives are skipped",
			stream: ": keep-alive\n\n:another\ndata: x\n: in the middle\n\n: keep-alive\n\n",
			want:   []sseEvent{{Event: "message", Data: "x"}},
		},
		{
			name:   "an event without data is not dispatched",
			stream: "event: ping\n\nid: 7\n\ndata: x\n\n",
			want:   []sseEvent{{ID: "7", Event: "message", Data: "x"}},
		},
		{
			name:   "the last event ID carries over and can be cleared",
			stream: "id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
			want: []sseEvent{
				{ID: "1", Event: "message", Data: "a"},
				{ID: "1", Event: "message", Data: "b"},
				{ID: "", Event: "message", Data: "c"},
			},
		},
		{
			name:   "an id with NUL is ignored",
			stream: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			want: []sseEvent{
				{ID: "1", Event: "message", Data: "a"},
				{ID: "1", Event: "message", Data: "b"},
			},
		},
		{
			name:   "the event type does not carry over",
			stream: "event: error\ndata: a\n\ndata: b\n\n",
			want: []sseEvent{
				{Event: "error", Data: "a"},
				{Event: "message", Data: "b"},
			},
		},
		{
			name:   "only one space after the colon is dropped",
			stream: "data:no space\ndata:  two spaces\ndata: a: b\n\n",
			want:   []sseEvent{{Event: "message", Data: "no space\n two spaces\na: b"}},
		},
		{
			name:   "a field without colon has an empty value",
			stream: "data\ndata\n\n",
			want:   []sseEvent{{Event: "message", Data: "\n"}},
		},
		{
			name:   "unknown fields and retry are ignored",
			stream: "retry: 1000\nfoo: bar\nDATA: no\ndata: yes\n\n",
			want:   []sseEvent{{Event: "message", Data: "yes"}},
		},
		{
			name:   "CRLF line endings",
			stream: "id: 1\r\ndata: a\r\n\r\ndata: b\r\n\r\n",
			want: []sseEvent{
				{ID: "1", Event: "message", Data: "a"},
				{ID: "1", Event: "message", Data: "b"},
			},
		},
		{
			name:   "CR line endings",
			stream: "data: a\rdata: b\r\rdata: c\r\r",
			want: []sseEvent{
				{Event: "message", Data: "a\nb"},
				{Event: "message", Data: "c"},
			},
		},
		{
			name:   "mixed line endings",
			stream: "data: a\r\ndata: b\rdata: c\n\r\n",
			want:   []sseEvent{{Event: "message", Data: "a\nb\nc"}},
		},
		{
			name:   "a byte order mark at the start is dropped",
			stream: "\uFEFFdata: a\n\n",
			want:   []sseEvent{{Event: "message", Data: "a"}},
		},
		{
			name:   "an event no blank line ended is dropped at the end",
			stream: "data: a\n\ndata: unfinished\n",
			want:   []sseEvent{{Event: "message", Data: "a"}},
		},
		{
			name:   "a last line without ending is dropped",
			stream: "data: a\n\ndata: b",
			want:   []sseEvent{{Event: "message", Data: "a"}},
		},
		{
			name:   "empty stream",
			stream: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAllEvents(strings.NewReader(tt.stream), 1<<10)
			assert.ErrorIs(t, err, io.EOF)
			assert.Equal(t, tt.want, got)

			// The same, delivered a byte at a time, as a slow network may.
			got, err = readAllEvents(iotest.OneByteReader(strings.NewReader(tt.stream)), 1<<10)
			assert.ErrorIs(t, err, io.EOF)
			assert.Equal(t, tt.want, got)
		})
	}
}

// A CR ends a line at once: the reader must not wait for the next byte to
// see whether it is an LF, or an event would sit in the buffer until the
// next one arrives.
func TestSSEReaderDispatchesOnCRWithoutWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	go pw.Write([]byte("data: a\r\r")) // then nothing more, and no EOF
	events := newSSEReader(pr, 1<<10)
	ev, err := events.Next()
	require.NoError(t, err)
	assert.Equal(t, sseEvent{Event: "message", Data: "a"}, ev)
}

func TestSSEReaderBounds(t *testing.T) {
	long := strings.Repeat("x", 100)
	_, err := readAllEvents(strings.NewReader("data: "+long+"\n\n"), 50)
	assert.ErrorIs(t, err, errSSETooLong, "one long line")

	many := strings.Repeat("data: "+long[:20]+"\n", 10) + "\n"
	_, err = readAllEvents(strings.NewReader(many), 100)
	assert.ErrorIs(t, err, errSSETooLong, "many short lines in one event")

	// Comments do not count towards an event.
	ok := strings.Repeat(": "+long[:40]+"\n", 10) + "data: x\n\n"
	got, err := readAllEvents(strings.NewReader(ok), 50)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []sseEvent{{Event: "message", Data: "x"}}, got)
}

func TestSSEReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	got, err := readAllEvents(r, 1<<10)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, []sseEvent{{Event: "message", Data: "a"}}, got)
}
