package kubectlherald

import (
	"bufio"
	"io"
	"strings"
)

// sseEvent is one Server-Sent Event of the inbox stream (docs/inbox.md):
// its id, type and data. Comments (heartbeats) are not events.
type sseEvent struct {
	ID, Type, Data string
}

// maxSSELine bounds one line of the stream: an event's data is one item or
// a whole inbox list, well below it.
const maxSSELine = 16 << 20

// readSSE parses the stream r and hands each event to each, in order,
// until r ends, each returns false, or a line is longer than maxSSELine.
// It follows the parts of the text/event-stream format the inbox uses: a
// blank line ends an event, "data" lines join with newlines, a single
// space after the colon is dropped, lines starting with ":" are comments,
// and CR, LF and CRLF all end lines.
func readSSE(r io.Reader, each func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	sc.Split(scanLines)
	var (
		ev      sseEvent
		data    []string
		hasData bool
	)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData || ev.Type != "" {
				ev.Data = strings.Join(data, "\n")
				if ev.Type == "" {
					ev.Type = "message"
				}
				if !each(ev) {
					return nil
				}
			}
			ev, data, hasData = sseEvent{ID: ev.ID}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID = value
			}
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
			hasData = true
		}
	}
	return sc.Err()
}

// scanLines splits at CRLF, LF or CR.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		switch b {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // a LF may follow
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
