// <herald-inbox>: Herald's inbox as a framework-free web component.
//
// Plain JavaScript, an ES module with no dependencies and no build step:
//
//   <script type="module" src="herald-inbox.js"></script>
//   <herald-inbox base="https://kube.example.com" namespace="team-a"></herald-inbox>
//   <script type="module">
//     document.querySelector('herald-inbox').tokenProvider = async () => myOidcToken();
//   </script>
//
// It talks to the inbox API (inbox.herald.dev/v1alpha1) at `base` (default:
// the page's origin), either kube-apiserver itself or a proxy in front of
// it, with the user's bearer token when a `token` or `tokenProvider` is
// set (a proxy that authenticates by cookie needs neither). It offers a bell
// with the unread count, the list, read/unread, archive/unarchive,
// acknowledge, snooze,
// answers to approvals, mark all read, archive all read and the caller's
// preferences; it stays live over Server-Sent Events and resumes with
// Last-Event-ID after a dropped connection.
//
// Attributes: base, namespace (empty: every namespace; preferences need
// one), open (the panel starts open). Events: herald-inbox-state
// (detail: 'connecting' | 'live' | 'down' | 'denied'), herald-inbox-counts
// (detail: the InboxCounts). The markup is light DOM with stable class
// names (hi-*, item, title, actions, ...) so that pages style it.

const GROUP = '/apis/inbox.herald.dev/v1alpha1';
const CHANNELS = ['inApp', 'email', 'whatsapp', 'webhook', 'slack', 'teams', 'telegram'];
const MAX_BULK_ROUNDS = 20; // a bulk action changes at most 100 items a request

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

function key(item) {
  return item.metadata.namespace + '/' + item.metadata.name;
}

// shown is what an item's row displays: everything but status.seen and
// seenTime, which change no visible content (only the row's data-seen
// attribute).
export function shown(item) {
  const { seen: _s, seenTime: _t, ...status } = item.status || {};
  return JSON.stringify([item.spec, status]);
}

// refocus moves keyboard focus from control, inside a row being replaced,
// to the same control in the new row: the same operation, or, where it
// flipped (Mark read to Mark unread), the button at the same place.
function refocus(control, oldRow, newRow) {
  const same = [...newRow.querySelectorAll('button')].find((b) =>
    b.dataset.op === control.dataset.op && b.dataset.answer === control.dataset.answer && b.dataset.preset === control.dataset.preset);
  const buttons = [...oldRow.querySelectorAll('button')];
  const target = same || newRow.querySelectorAll('button')[buttons.indexOf(control)] || newRow.querySelector('button');
  // Focus only once the new row is in the document, after render places it.
  if (target) queueMicrotask(() => target.focus());
}

function when(item) {
  const t = item.spec.createdTime || item.metadata.creationTimestamp;
  return t ? new Date(t) : new Date(0);
}

// parseSSE splits buffered text into complete events; it returns the
// events and the unparsed rest.
export function parseSSE(buf) {
  const events = [];
  let end;
  while ((end = buf.indexOf('\n\n')) >= 0) {
    const block = buf.slice(0, end);
    buf = buf.slice(end + 2);
    const ev = { id: null, type: 'message', data: '' };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue; // heartbeat or note
      const i = line.indexOf(':');
      if (i < 0) continue;
      const field = line.slice(0, i);
      const val = line.slice(i + 1).replace(/^ /, '');
      if (field === 'id') ev.id = val;
      else if (field === 'event') ev.type = val;
      else if (field === 'data') ev.data += val;
    }
    if (ev.data) events.push(ev);
  }
  return { events, rest: buf };
}

export class HeraldInbox extends HTMLElement {
  static observedAttributes = ['base', 'namespace'];

  constructor() {
    super();
    this.token = null; // a bearer token, or
    this.tokenProvider = null; // an async function returning one
    this.items = new Map(); // namespace/name -> InboxItem
    this.counts = null;
    this.prefs = null;
    this.showArchived = false;
    this.lastId = null;
    this.abort = null;
    this.built = false;
  }

  get base() { return (this.getAttribute('base') || '').replace(/\/$/, '') + GROUP; }
  get namespace() { return this.getAttribute('namespace') || ''; }
  get scope() { return this.namespace ? '/namespaces/' + encodeURIComponent(this.namespace) : ''; }

  connectedCallback() {
    if (!this.built) this.build();
    this.start();
  }

  disconnectedCallback() { this.stop(); }

  attributeChangedCallback() {
    if (!this.isConnected || !this.built) return;
    this.stop();
    this.items.clear();
    this.lastId = null;
    this.render();
    this.start();
  }

  build() {
    this.built = true;
    const id = 'hi-' + Math.random().toString(36).slice(2, 8);
    this.bell = el('button', { type: 'button', class: 'hi-bell', 'aria-expanded': String(this.hasAttribute('open')), 'aria-controls': id + '-panel',
      onclick: () => this.toggle() },
    el('span', { class: 'hi-bell-icon', 'aria-hidden': 'true' }, '\u{1F514}'),
    this.badge = el('span', { class: 'hi-count', dataset: { count: '0' } }, '0'));
    this.statusLine = el('span', { class: 'hi-status', role: 'status' }, 'connecting…');
    this.problem = el('p', { class: 'hi-problem problem', role: 'alert', hidden: true });
    this.list = el('ul', { class: 'hi-items', 'aria-label': 'Notifications' });
    this.empty = el('p', { class: 'hi-empty empty', hidden: true }, 'No notifications.');
    this.prefsForm = el('form', { class: 'hi-prefs', hidden: true, 'aria-label': 'Notification preferences', onsubmit: (e) => { e.preventDefault(); this.savePrefs(); } });
    this.prefsButton = el('button', { type: 'button', dataset: { op: 'preferences' }, 'aria-expanded': 'false', 'aria-controls': id + '-prefs',
      hidden: !this.namespace, onclick: () => this.togglePrefs() }, 'Preferences');
    this.prefsForm.id = id + '-prefs';
    this.panel = el('section', { class: 'hi-panel', id: id + '-panel', 'aria-label': 'Inbox', hidden: !this.hasAttribute('open') },
      el('div', { class: 'hi-toolbar actions' },
        el('button', { type: 'button', dataset: { op: 'mark-all-read' }, onclick: (e) => this.bulk('MarkRead', e.target) }, 'Mark all read'),
        el('button', { type: 'button', dataset: { op: 'archive-read' }, onclick: (e) => this.bulk('ArchiveRead', e.target) }, 'Archive read'),
        el('label', {}, el('input', { type: 'checkbox', dataset: { op: 'show-archived' }, onchange: (e) => { this.showArchived = e.target.checked; this.render(); } }), ' show archived'),
        this.prefsButton,
        this.statusLine),
      this.problem, this.prefsForm, this.list, this.empty);
    this.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !this.panel.hidden && !this.hasAttribute('open')) { this.toggle(false); this.bell.focus(); }
    });
    this.replaceChildren(el('div', { class: 'hi' }, this.bell, this.panel));
    this.render();
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.bell.setAttribute('aria-expanded', String(open));
    if (open) this.markSeen();
  }

  setState(state, text) {
    this.dataset.state = state;
    this.statusLine.textContent = text || state;
    this.dispatchEvent(new CustomEvent('herald-inbox-state', { detail: state, bubbles: true }));
  }

  showProblem(text) {
    this.problem.textContent = text || '';
    this.problem.hidden = !text;
  }

  async headers(extra = {}) {
    const h = { Accept: 'application/json', ...extra };
    const token = this.tokenProvider ? await this.tokenProvider() : this.token;
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  async call(method, path, body, contentType = 'application/json') {
    const init = { method, headers: await this.headers(body ? { 'Content-Type': contentType } : {}) };
    if (body) init.body = JSON.stringify(body);
    const resp = await fetch(this.base + path, init);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const err = new Error(data.message || resp.status + ' ' + resp.statusText);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  // --- the stream

  start() {
    const abort = new AbortController();
    this.abort = abort;
    this.follow(abort.signal);
  }

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  async follow(signal) {
    while (!signal.aborted) {
      this.setState('connecting', 'connecting…');
      try {
        const headers = await this.headers({ Accept: 'text/event-stream' });
        if (this.lastId) headers['Last-Event-ID'] = this.lastId;
        const resp = await fetch(this.base + this.scope + '/stream?watch=1&counts=true', { headers, signal });
        if (resp.status === 401 || resp.status === 403) {
          this.setState('denied', 'not allowed');
          this.showProblem('The inbox refused this user (' + resp.status + ').');
          return;
        }
        if (!resp.ok) throw new Error('stream: ' + resp.status);
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseSSE(buf + value);
          buf = parsed.rest;
          for (const ev of parsed.events) this.onEvent(ev);
        }
      } catch (err) {
        if (signal.aborted) return;
      }
      this.setState('down', 'reconnecting…');
      await new Promise((r) => setTimeout(r, 1000 + Math.random() * 2000));
    }
  }

  onEvent(ev) {
    const data = JSON.parse(ev.data);
    if (ev.id) this.lastId = ev.id;
    switch (ev.type) {
      case 'reset':
        this.items.clear();
        for (const it of data.items || []) this.items.set(key(it), it);
        this.showProblem('');
        this.setState('live', 'live');
        break;
      case 'item':
      case 'update':
        this.items.set(key(data), data);
        break;
      case 'remove':
        this.items.delete(key(data));
        break;
      case 'counts':
        this.counts = data;
        this.renderCounts();
        this.dispatchEvent(new CustomEvent('herald-inbox-counts', { detail: data, bubbles: true }));
        if (this.dataset.state !== 'live') this.setState('live', 'live');
        return;
      default:
        return;
    }
    this.render();
    if (!this.panel.hidden) this.markSeen();
  }

  // --- writes

  async patchItem(it, status, button) {
    const row = button.closest('.item');
    row.querySelector('.error')?.remove();
    for (const b of row.querySelectorAll('button')) b.disabled = true;
    try {
      const path = '/namespaces/' + encodeURIComponent(it.metadata.namespace) + '/inboxitems/' + encodeURIComponent(it.metadata.name) + '/status';
      const updated = await this.call('PATCH', path, { status }, 'application/merge-patch+json');
      if (!updated.status?.snoozedUntil || new Date(updated.status.snoozedUntil) <= new Date()) {
        this.items.set(key(it), updated);
      }
      this.render();
    } catch (err) {
      for (const b of row.querySelectorAll('button')) b.disabled = false;
      row.append(el('p', { class: 'error', role: 'alert' }, String(err.message || err)));
    }
  }

  async runBulk(spec) {
    const total = { matched: 0, changed: 0, failed: [] };
    for (let round = 0; round < MAX_BULK_ROUNDS; round++) {
      const act = await this.call('POST', '/bulkactions', {
        apiVersion: 'inbox.herald.dev/v1alpha1', kind: 'BulkAction', metadata: { name: 'herald-inbox' },
        spec: { namespace: this.namespace, ...spec },
      });
      const st = act.status || {};
      total.matched = Math.max(total.matched, st.matched || 0);
      total.changed += st.changed || 0;
      total.failed.push(...(st.failed || []));
      if (!st.remaining || !st.changed) break;
    }
    return total;
  }

  async bulk(operation, button) {
    button.disabled = true;
    this.showProblem('');
    try {
      const r = await this.runBulk({ operation });
      if (r.failed.length) this.showProblem(r.failed.length + ' item(s) could not be changed: ' + r.failed[0].message);
    } catch (err) {
      this.showProblem(String(err.message || err));
    } finally {
      button.disabled = false;
    }
  }

  async snooze(it, preset, button) {
    const row = button.closest('.item');
    row.querySelector('.error')?.remove();
    try {
      const r = await this.runBulk({
        operation: 'Snooze', namespace: it.metadata.namespace,
        fieldSelector: 'metadata.name=' + it.metadata.name, snooze: { preset },
      });
      if (r.failed.length) throw new Error(r.failed[0].message);
    } catch (err) {
      row.append(el('p', { class: 'error', role: 'alert' }, String(err.message || err)));
    }
  }

  // markSeen marks what the open panel shows as seen, once per item.
  async markSeen() {
    const unseen = [...this.items.values()].filter((it) => !it.status?.seen && !it.status?.archived);
    if (!unseen.length || this.seeing) return;
    this.seeing = true;
    try { await this.runBulk({ operation: 'MarkSeen' }); } catch (_) { /* seen state is best effort */ } finally { this.seeing = false; }
  }

  // --- preferences

  async togglePrefs() {
    const open = this.prefsForm.hidden;
    this.prefsButton.setAttribute('aria-expanded', String(open));
    if (!open) { this.prefsForm.hidden = true; return; }
    try {
      this.prefs = await this.call('GET', this.scope + '/preferences/me');
      this.renderPrefs();
      this.prefsForm.hidden = false;
      this.prefsForm.querySelector('input')?.focus();
    } catch (err) {
      this.prefsButton.setAttribute('aria-expanded', 'false');
      this.showProblem(err.status === 404 ? 'You have no preferences in this namespace (no Recipient with your user name).' : String(err.message || err));
    }
  }

  renderPrefs() {
    const spec = this.prefs.spec || {};
    const locked = this.prefs.status?.lockedCategories || [];
    const optOut = new Set(spec.optOut || []);
    const channelBoxes = (name, checked, label) => el('fieldset', { class: 'hi-channels', dataset: { field: name } },
      el('legend', {}, label),
      ...CHANNELS.map((c) => el('label', {}, el('input', { type: 'checkbox', name, value: c, checked: checked(c) }), ' ' + c)));
    const cats = (spec.categories || []).map((c) => c.category);
    const catRows = cats.map((cat) => {
      const allowed = new Set(spec.categories.find((c) => c.category === cat).channels || []);
      return channelBoxes('category:' + cat, (c) => allowed.has(c), 'Channels for ' + cat);
    });
    this.prefsForm.replaceChildren(
      el('h3', {}, 'Preferences'),
      channelBoxes('receive', (c) => !optOut.has(c), 'Receive notifications on'),
      ...catRows,
      el('label', {}, 'Category to choose channels for ',
        el('input', { type: 'text', name: 'new-category', placeholder: 'e.g. deployments', 'aria-describedby': 'hi-locked' })),
      el('p', { id: 'hi-locked', class: 'hi-note' }, locked.length ? 'Always delivered (namespace policy): ' + locked.join(', ') : ''),
      el('label', {}, 'Timezone ', el('input', { type: 'text', name: 'timezone', value: spec.timezone || '', placeholder: 'Europe/Berlin' })),
      el('div', { class: 'actions' }, el('button', { type: 'submit', dataset: { op: 'save-preferences' } }, 'Save preferences')),
      el('p', { class: 'hi-prefs-result', role: 'status' }));
  }

  async savePrefs() {
    const f = this.prefsForm;
    const checked = (name) => [...f.querySelectorAll(`input[name="${CSS.escape(name)}"]:checked`)].map((i) => i.value);
    const spec = { ...(this.prefs.spec || {}) };
    spec.optOut = CHANNELS.filter((c) => !checked('receive').includes(c));
    const categories = [];
    for (const fs of f.querySelectorAll('fieldset[data-field^="category:"]')) {
      categories.push({ category: fs.dataset.field.slice('category:'.length), channels: checked(fs.dataset.field) });
    }
    const added = f.elements['new-category'].value.trim();
    if (added && !categories.some((c) => c.category === added)) {
      // A new category starts with every channel still received.
      categories.push({ category: added, channels: CHANNELS.filter((c) => !spec.optOut.includes(c)) });
    }
    spec.categories = categories;
    spec.timezone = f.elements.timezone.value.trim();
    const result = f.querySelector('.hi-prefs-result');
    try {
      this.prefs = await this.call('PATCH', this.scope + '/preferences/me', { spec }, 'application/merge-patch+json');
      this.renderPrefs();
      f.querySelector('.hi-prefs-result').textContent = 'Saved.';
    } catch (err) {
      result.textContent = String(err.message || err);
      result.classList.add('error');
    }
  }

  // --- rendering

  renderCounts() {
    const unread = this.counts?.counts?.unread || 0;
    this.badge.textContent = unread > 99 ? '99+' : String(unread);
    this.badge.dataset.count = String(unread);
    this.bell.setAttribute('aria-label', 'Inbox, ' + unread + ' unread');
  }

  renderItem(it) {
    const st = it.status || {};
    const type = it.spec.type || 'informational';
    const op = (name, label, fn, extra = {}) => el('button', { type: 'button', dataset: { op: name, ...extra }, onclick: (e) => fn(e.target) }, label);
    const actions = el('div', { class: 'actions' },
      st.read ? op('unread', 'Mark unread', (b) => this.patchItem(it, { read: false }, b))
        : op('read', 'Mark read', (b) => this.patchItem(it, { read: true }, b)),
      st.archived ? op('unarchive', 'Unarchive', (b) => this.patchItem(it, { archived: false }, b))
        : op('archive', 'Archive', (b) => this.patchItem(it, { archived: true }, b)),
      // Acknowledging says "I am on it": it stops the notification's
      // escalation and reminders, and cannot be taken back.
      st.acknowledged ? null : op('acknowledge', 'Acknowledge', (b) => this.patchItem(it, { acknowledged: true }, b)),
      op('snooze', 'Snooze 1h', (b) => this.snooze(it, '1h', b), { preset: '1h' }),
      op('snooze', 'Snooze until tomorrow', (b) => this.snooze(it, 'tomorrow', b), { preset: 'tomorrow' }));
    let response = null;
    if (st.response) {
      const a = (it.spec.actions || []).find((x) => x.id === st.response.action);
      response = el('p', { class: 'response', dataset: { response: st.response.action } }, 'Answered: ' + (a ? a.label : st.response.action));
    } else {
      for (const a of it.spec.actions || []) {
        actions.append(el('button', { type: 'button', class: 'answer', dataset: { op: 'answer', answer: a.id },
          onclick: (e) => this.patchItem(it, { read: true, response: { action: a.id } }, e.target) }, a.label || a.id));
      }
    }
    const titleId = 'hi-t-' + it.metadata.uid;
    return el('li', {
      class: 'item' + (st.read ? ' read' : ' unread') + (st.archived ? ' archived' : ''),
      'aria-labelledby': titleId,
      dataset: { name: it.metadata.name, namespace: it.metadata.namespace, notification: it.spec.notification, read: String(!!st.read), seen: String(!!st.seen), acknowledged: String(!!st.acknowledged) },
    },
    el('div', { class: 'meta' },
      el('span', { class: 'badge ' + type }, type),
      it.spec.category ? el('span', { class: 'category' }, it.spec.category) : null,
      el('time', { datetime: when(it).toISOString() }, when(it).toLocaleString()),
      el('span', {}, st.read ? 'read' : 'unread'),
      st.acknowledged ? el('span', { class: 'acknowledged' }, 'acknowledged') : null),
    el('h3', { class: 'title', id: titleId }, it.spec.title || it.spec.notification),
    it.spec.message ? el('p', { class: 'message' }, it.spec.message) : null,
    actions, response);
  }

  // render brings the list up to date, rebuilding only the rows whose
  // shown content changed and leaving the others in place. Rebuilding every
  // row on every event would swallow a click that lands while the row is
  // replaced and would drop keyboard focus whenever any item changes (the
  // open panel marks each new item seen a moment after it arrives).
  render() {
    const now = new Date();
    const items = [...this.items.values()]
      .filter((it) => this.showArchived || !it.status?.archived)
      .filter((it) => !it.spec.expiresAt || new Date(it.spec.expiresAt) > now)
      .sort((a, b) => when(b) - when(a));
    const before = this.rows || new Map();
    this.rows = new Map();
    const rows = items.map((it) => {
      const k = key(it);
      let row = before.get(k);
      // An event replaces the object of the item it changes; every other
      // item is the very object its row was made or checked for.
      if (row && row.heraldItem === it) {
        this.rows.set(k, row);
        return row;
      }
      const look = shown(it);
      if (row && row.heraldShown === look) {
        row.dataset.seen = String(!!it.status?.seen);
      } else {
        const old = row;
        row = this.renderItem(it);
        row.heraldShown = look;
        if (old && old.contains(document.activeElement)) refocus(document.activeElement, old, row);
      }
      row.heraldItem = it;
      this.rows.set(k, row);
      return row;
    });
    // Put the rows in order, moving only those out of place; whatever is
    // left after them is a replaced or removed row.
    let at = this.list.firstElementChild;
    for (const row of rows) {
      if (row === at) { at = at.nextElementSibling; continue; }
      this.list.insertBefore(row, at);
    }
    while (at) { const next = at.nextElementSibling; at.remove(); at = next; }
    this.empty.hidden = items.length > 0;
    this.renderCounts();
  }
}

if (!customElements.get('herald-inbox')) customElements.define('herald-inbox', HeraldInbox);
