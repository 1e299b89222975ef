//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A small Chrome DevTools Protocol client over --remote-debugging-pipe:
// Chromium reads commands from its file descriptor 3 and writes answers and
// events to descriptor 4, each message a JSON object ended by a NUL byte.
// No WebSocket, no driver, no Node.js: only Debian's chromium.

// browser is a headless Chromium.
type browser struct {
	cmd    *exec.Cmd
	toCh   *os.File // our end of Chromium's fd 3
	fromCh *os.File // our end of Chromium's fd 4
	exited chan struct{}
	stderr *strings.Builder

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
	events  []func(cdpMessage)
	closed  error
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error,omitempty"`
}

// launchBrowser starts Chromium headless with the flags this machine
// needs (no sandbox as root, no background networking on a closed network)
// and a fresh profile in dir.
func launchBrowser(path, dir string) (*browser, error) {
	// Chromium's fd 3 reads what we write to w3; we read r4, which is its fd 4.
	r3, w3, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r4, w4, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio", "--no-default-browser-check",
		"--window-size=1280,900", "--user-data-dir="+dir, "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{r3, w4}
	stderr := &strings.Builder{}
	cmd.Stderr = &lockedWriter{b: stderr}
	// Chromium dies with the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	r3.Close()
	w4.Close()
	b := &browser{cmd: cmd, toCh: w3, fromCh: r4, exited: make(chan struct{}), stderr: stderr, pending: map[int]chan cdpMessage{}}
	go func() { _ = cmd.Wait(); close(b.exited) }()
	go b.read()
	return b, nil
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() < 1<<20 {
		w.b.Write(p)
	}
	return len(p), nil
}

func (b *browser) read() {
	r := bufio.NewReaderSize(b.fromCh, 1<<20)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.closed = fmt.Errorf("chromium closed the DevTools pipe: %w", err)
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				ch <- m
				delete(b.pending, m.ID)
			}
			b.mu.Unlock()
			continue
		}
		handlers := append([]func(cdpMessage){}, b.events...)
		b.mu.Unlock()
		for _, h := range handlers {
			h(m)
		}
	}
}

// onEvent calls f for every event (any session).
func (b *browser) onEvent(f func(cdpMessage)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, f)
}

// call sends a command and decodes its result into out (when not nil).
func (b *browser) call(ctx context.Context, session, method string, params, out any) error {
	if params == nil {
		params = struct{}{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed != nil {
		b.mu.Unlock()
		return b.closed
	}
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg, err := json.Marshal(cdpMessage{ID: id, SessionID: session, Method: method, Params: p})
	if err != nil {
		return err
	}
	if _, err := b.toCh.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: %w", method, b.closed)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s %s", method, m.Error.Message, m.Error.Data)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// close asks Chromium to exit, then kills it if it does not.
func (b *browser) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.call(ctx, "", "Browser.close", nil, nil)
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.exited
	}
	b.toCh.Close()
	b.fromCh.Close()
}

// page is one tab, attached with a flat session.
type page struct {
	b       *browser
	session string

	mu       sync.Mutex
	problems []string // uncaught exceptions and console errors
}

func (b *browser) newPage(ctx context.Context) (*page, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		return nil, err
	}
	p := &page{b: b, session: att.SessionID}
	b.onEvent(func(m cdpMessage) {
		if m.SessionID != p.session {
			return
		}
		switch m.Method {
		case "Runtime.exceptionThrown":
			var ev struct {
				ExceptionDetails struct {
					Text      string `json:"text"`
					Exception struct {
						Description string `json:"description"`
					} `json:"exception"`
				} `json:"exceptionDetails"`
			}
			_ = json.Unmarshal(m.Params, &ev)
			p.note("exception: " + ev.ExceptionDetails.Text + " " + ev.ExceptionDetails.Exception.Description)
		case "Runtime.consoleAPICalled":
			var ev struct {
				Type string `json:"type"`
				Args []struct {
					Value any `json:"value"`
				} `json:"args"`
			}
			_ = json.Unmarshal(m.Params, &ev)
			if ev.Type == "error" {
				p.note(fmt.Sprintf("console.error: %v", ev.Args))
			}
		}
	})
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := p.call(ctx, m, nil, nil); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *page) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, s)
}

// Problems returns the page's uncaught exceptions and console errors.
func (p *page) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

func (p *page) call(ctx context.Context, method string, params, out any) error {
	return p.b.call(ctx, p.session, method, params, out)
}

// navigate loads url and waits for its load event.
func (p *page) navigate(ctx context.Context, url string) error {
	loaded := make(chan struct{})
	var once sync.Once
	p.b.onEvent(func(m cdpMessage) {
		if m.SessionID == p.session && m.Method == "Page.loadEventFired" {
			once.Do(func() { close(loaded) })
		}
	})
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.call(ctx, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("navigating to %s: %s", url, res.ErrorText)
	}
	select {
	case <-loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s to load: %w", url, ctx.Err())
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into out.
func (p *page) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := p.call(ctx, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true,
	}, &res); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return errors.New(strings.TrimSpace(res.ExceptionDetails.Text + " " + res.ExceptionDetails.Exception.Description))
	}
	if out != nil && len(res.Result.Value) > 0 {
		return json.Unmarshal(res.Result.Value, out)
	}
	return nil
}

// waitFor waits until the JavaScript predicate is truthy in the page,
// checking it whenever the DOM changes (and every 100ms, for state that is
// not in the DOM), or fails after timeout.
func (p *page) waitFor(ctx context.Context, predicate string, timeout time.Duration) error {
	pred, _ := json.Marshal(predicate)
	expr := fmt.Sprintf(`new Promise((resolve, reject) => {
  const check = () => { try { return !!(%s); } catch (e) { return false; } };
  if (check()) return resolve(true);
  const obs = new MutationObserver(() => { if (check()) done(true); });
  const tick = setInterval(() => { if (check()) done(true); }, 100);
  const timer = setTimeout(() => done(false), %d);
  function done(ok) {
    obs.disconnect(); clearInterval(tick); clearTimeout(timer);
    ok ? resolve(true) : reject(new Error('timed out waiting for ' + %s));
  }
  if (document.documentElement) obs.observe(document.documentElement, {subtree: true, childList: true, attributes: true, characterData: true});
})`, predicate, timeout.Milliseconds(), pred)
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	return p.eval(ctx, expr, nil)
}

// click scrolls the first element matching selector into view and clicks
// its centre with real mouse events, as a person would: it fails when the
// element is missing, hidden or disabled.
func (p *page) click(ctx context.Context, selector string) error {
	sel, _ := json.Marshal(selector)
	var box struct {
		X, Y     float64
		Error    string
		Disabled bool
	}
	if err := p.eval(ctx, fmt.Sprintf(`(() => {
  const el = document.querySelector(%s);
  if (!el) return {Error: 'no element matches ' + %s};
  el.scrollIntoView({block: 'center'});
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return {Error: %s + ' is not visible'};
  return {X: r.left + r.width / 2, Y: r.top + r.height / 2, Disabled: !!el.disabled};
})()`, sel, sel, sel), &box); err != nil {
		return err
	}
	if box.Error != "" {
		return errors.New(box.Error)
	}
	if box.Disabled {
		return fmt.Errorf("%s is disabled", selector)
	}
	// The element under the point must be the target or inside it.
	var hit bool
	if err := p.eval(ctx, fmt.Sprintf(`(() => { const t = document.querySelector(%s); const e = document.elementFromPoint(%f, %f); return !!e && (e === t || t.contains(e)); })()`, sel, box.X, box.Y), &hit); err != nil {
		return err
	}
	if !hit {
		return fmt.Errorf("%s is covered by another element", selector)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		params := map[string]any{"type": typ, "x": box.X, "y": box.Y, "button": "left", "clickCount": 1}
		if typ == "mouseMoved" {
			params["button"] = "none"
			params["clickCount"] = 0
		}
		if err := p.call(ctx, "Input.dispatchMouseEvent", params, nil); err != nil {
			return err
		}
	}
	return nil
}

// screenshot writes a PNG of the page to file.
func (p *page) screenshot(ctx context.Context, file string) error {
	var res struct {
		Data string `json:"data"`
	}
	if err := p.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		return err
	}
	data, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}
