// Unit tests of the component's SSE parser, for Node's built-in test
// runner (`node --test`, run by `make test-web`). The browser test
// (test/e2e) drives the component itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';

// The module defines a custom element when it loads; outside a browser it
// only needs these two names.
globalThis.HTMLElement = class {};
globalThis.customElements = { get: () => undefined, define: () => {} };
const { parseSSE } = await import('./herald-inbox.js');

test('splits complete events and keeps the rest', () => {
  const { events, rest } = parseSSE('id: 7\nevent: item\ndata: {"a":1}\n\nid: 8\nevent: upd');
  assert.deepEqual(events, [{ id: '7', type: 'item', data: '{"a":1}' }]);
  assert.equal(rest, 'id: 8\nevent: upd');
});

test('ignores comments and events without data', () => {
  const { events, rest } = parseSSE(': heartbeat 2026-11-29T05:47:30Z\n\n: reset reason=Initial\nid: 9\nevent: reset\ndata: {}\n\n');
  assert.deepEqual(events, [{ id: '9', type: 'reset', data: '{}' }]);
  assert.equal(rest, '');
});

test('a counts event has no id', () => {
  const { events } = parseSSE('event: counts\ndata: {"counts":{"unread":3}}\n\n');
  assert.equal(events[0].id, null);
  assert.equal(JSON.parse(events[0].data).counts.unread, 3);
});

test('a value may contain colons and lose one leading space only', () => {
  const { events } = parseSSE('event: item\ndata:  {"t":"a:b"}\n\n');
  assert.equal(events[0].data, ' {"t":"a:b"}');
});

test('a row is kept when only status.seen changes', async () => {
  const { shown } = await import('./herald-inbox.js');
  const item = (status) => ({ metadata: { namespace: 'team-a', name: 'x', resourceVersion: String(Math.random()) }, spec: { title: 'Disk full' }, status });
  assert.equal(shown(item({ read: false })), shown(item({ read: false, seen: true, seenTime: '2026-12-01T18:00:00Z' })));
  assert.notEqual(shown(item({ read: false })), shown(item({ read: true })));
  assert.notEqual(shown(item({})), shown(item({ response: { action: 'approve' } })));
});
