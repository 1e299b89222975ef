// Package ssetest reads Server-Sent Events the way a browser's fetch()
// reader does, for the tests of the inbox stream.
package ssetest

import (
	"bufio"
	"io"
	"strings"
	"time"
)

// Event is one event of a stream, or one comment line (Type "", Comment
// set).
type Event struct {
	ID      string
	Type    string
	Data    string
	Comment string
	// At is when the event or comment was read.
	At time.Time
}

// Read parses r and hands each event and comment to each, in order, until
// r ends.
func Read(r io.Reader, each func(Event)) {
	br := bufio.NewReader(r)
	var ev Event
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.Type != "" || ev.Data != "" {
				ev.At = time.Now()
				each(ev)
			}
			ev = Event{}
		case strings.HasPrefix(line, ":"):
			each(Event{Comment: strings.TrimSpace(line[1:]), At: time.Now()})
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[len("id: "):]
		case strings.HasPrefix(line, "event: "):
			ev.Type = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.Data = line[len("data: "):]
		}
	}
}
