package kubectlherald

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func collect(t testing.TB, in string) []sseEvent {
	var out []sseEvent
	if err := readSSE(strings.NewReader(in), func(e sseEvent) bool { out = append(out, e); return true }); err != nil {
		t.Fatalf("readSSE(%q): %v", in, err)
	}
	return out
}

func TestReadSSE(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []sseEvent
	}{
		{"inbox item", ": reset reason=Initial\nid: 7\nevent: item\ndata: {\"a\":1}\n\n", []sseEvent{{ID: "7", Type: "item", Data: `{"a":1}`}}},
		{"heartbeat only", ": heartbeat 2026-11-29T05:47:30Z\n\n", nil},
		{"crlf and multi-line data", "event: x\r\ndata: a\r\ndata: b\r\n\r\n", []sseEvent{{Type: "x", Data: "a\nb"}}},
		{"cr only", "data:a\rdata:b\r\r", []sseEvent{{Type: "message", Data: "a\nb"}}},
		{"id carries over", "id: 1\ndata: a\n\ndata: b\n\n", []sseEvent{{ID: "1", Type: "message", Data: "a"}, {ID: "1", Type: "message", Data: "b"}}},
		{"unterminated event is dropped", "id: 2\nevent: item\ndata: {}", nil},
		{"unknown fields ignored", "retry: 10\nfoo\ndata: z\n\n", []sseEvent{{Type: "message", Data: "z"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(t, tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzReadSSE checks that any input parses without error or panic, and
// that an event written out in the format parses back to itself.
func FuzzReadSSE(f *testing.F) {
	f.Add("id: 7\nevent: item\ndata: {}\n\n", "item", "{\"x\":1}")
	f.Add("\r\r\n:\n", "update", "")
	f.Add("data", "remove", "a\nb")
	f.Fuzz(func(t *testing.T, raw, typ, data string) {
		collect(t, raw)
		if strings.ContainsAny(typ, "\r\n") || typ == "" || strings.HasPrefix(typ, " ") || strings.ContainsRune(data, '\r') {
			return
		}
		var b strings.Builder
		fmt.Fprintf(&b, "id: 1\nevent: %s\n", typ)
		for _, l := range strings.Split(data, "\n") {
			fmt.Fprintf(&b, "data: %s\n", l)
		}
		b.WriteString("\n")
		got := collect(t, b.String())
		want := []sseEvent{{ID: "1", Type: typ, Data: data}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip of %q %q: got %+v", typ, data, got)
		}
	})
}

func testStreams() genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
}
