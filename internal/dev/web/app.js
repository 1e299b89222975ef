// Herald inbox page for `herald dev`. Plain JavaScript, no build step.
// It reads the chosen user's inbox from the inbox API
// (inbox.herald.dev/v1alpha1) through herald dev's proxy:
//   GET   /api/users/{user}/stream                     Server-Sent Events
//   PATCH /api/users/{user}/inboxitems/{name}/status   merge patch of status
'use strict';

const $ = (sel) => document.querySelector(sel);
const state = { config: null, user: null, items: new Map(), source: null, retry: null, showArchived: false };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function setStatus(text, cls) {
  const s = $('#status');
  s.textContent = text;
  s.className = 'status ' + (cls || '');
  document.body.dataset.state = cls || 'loading';
}

function when(item) {
  const t = item.spec.createdTime || item.metadata.creationTimestamp;
  return t ? new Date(t) : new Date(0);
}

function fmt(t) {
  return t ? new Date(t).toLocaleString() : '';
}

async function load() {
  const resp = await fetch('/api/config');
  state.config = await resp.json();
  $('#mailpit').href = state.config.mailpitURL;
  $('#mailpit').textContent = 'Mailpit (' + state.config.mailpitURL + ')';
  const nav = $('#users');
  nav.replaceChildren(...state.config.users.map((u) =>
    el('button', { type: 'button', dataset: { user: u.username }, title: (u.roles || []).join(', '), 'aria-pressed': 'false', onclick: () => pick(u.username) },
      u.displayName || u.username)));
  if (!state.config.inbox) {
    showProblem('The inbox API is not available: ' + (state.config.inboxError || 'unknown reason'));
    setStatus('no inbox API', 'down');
    return;
  }
  const wanted = new URLSearchParams(location.search).get('user');
  if (wanted && state.config.users.some((u) => u.username === wanted)) pick(wanted);
  else setStatus('pick a user', 'idle');
}

function showProblem(text) {
  const p = $('#problem');
  p.textContent = text || '';
  p.hidden = !text;
}

function pick(user) {
  if (state.source) state.source.close();
  clearTimeout(state.retry);
  state.user = user;
  state.items.clear();
  for (const b of document.querySelectorAll('#users button')) b.setAttribute('aria-pressed', String(b.dataset.user === user));
  $('#inbox-title').textContent = 'Inbox of ' + user;
  const url = new URL(location.href);
  url.searchParams.set('user', user);
  history.replaceState(null, '', url);
  render();
  connect();
}

function connect() {
  const user = state.user;
  setStatus('connecting…', 'connecting');
  const source = new EventSource('/api/users/' + encodeURIComponent(user) + '/stream');
  state.source = source;
  const guard = (fn) => (ev) => { if (state.source === source) fn(JSON.parse(ev.data)); };
  source.addEventListener('reset', guard((list) => {
    state.items.clear();
    for (const it of list.items || []) state.items.set(it.metadata.name, it);
    showProblem('');
    setStatus('live', 'live');
    render();
  }));
  source.addEventListener('item', guard((it) => { state.items.set(it.metadata.name, it); render(); refreshSinks(); }));
  source.addEventListener('update', guard((it) => { state.items.set(it.metadata.name, it); render(); }));
  source.addEventListener('remove', guard((it) => { state.items.delete(it.metadata.name); render(); }));
  source.onopen = () => { if (state.source === source) { showProblem(''); setStatus('live', 'live'); } };
  source.onerror = () => {
    if (state.source !== source) return;
    if (source.readyState === EventSource.CLOSED) {
      // A refused stream (4xx/5xx) is not retried by the browser.
      setStatus('disconnected; retrying', 'down');
      state.retry = setTimeout(() => { if (state.source === source) connect(); }, 3000);
    } else {
      setStatus('reconnecting…', 'down');
    }
  };
}

async function patchStatus(item, status, button) {
  const row = button.closest('.item');
  row.querySelector('.error')?.remove();
  for (const b of row.querySelectorAll('button')) b.disabled = true;
  try {
    const resp = await fetch('/api/users/' + encodeURIComponent(state.user) + '/inboxitems/' + encodeURIComponent(item.metadata.name) + '/status', {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/merge-patch+json', Accept: 'application/json' },
      body: JSON.stringify({ status }),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.message || resp.status + ' ' + resp.statusText);
    state.items.set(body.metadata.name, body);
    render();
  } catch (err) {
    for (const b of row.querySelectorAll('button')) b.disabled = false;
    row.append(el('p', { class: 'error', role: 'alert' }, String(err.message || err)));
  }
}

function renderItem(it) {
  const st = it.status || {};
  const type = it.spec.type || 'informational';
  const actions = el('div', { class: 'actions' });
  if (st.read) actions.append(el('button', { type: 'button', dataset: { op: 'unread' }, onclick: (e) => patchStatus(it, { read: false }, e.target) }, 'Mark unread'));
  else actions.append(el('button', { type: 'button', dataset: { op: 'read' }, onclick: (e) => patchStatus(it, { read: true }, e.target) }, 'Mark read'));
  actions.append(st.archived
    ? el('button', { type: 'button', dataset: { op: 'unarchive' }, onclick: (e) => patchStatus(it, { archived: false }, e.target) }, 'Unarchive')
    : el('button', { type: 'button', dataset: { op: 'archive' }, onclick: (e) => patchStatus(it, { archived: true }, e.target) }, 'Archive'));
  let response = null;
  if (st.response) {
    const a = (it.spec.actions || []).find((x) => x.id === st.response.action);
    response = el('p', { class: 'response', dataset: { response: st.response.action } },
      'Answered: ' + (a ? a.label : st.response.action) + (st.response.time ? ' at ' + fmt(st.response.time) : ''));
  } else {
    for (const a of it.spec.actions || []) {
      actions.append(el('button', { type: 'button', class: 'answer', dataset: { op: 'answer', answer: a.id },
        onclick: (e) => patchStatus(it, { read: true, response: { action: a.id } }, e.target) }, a.label || a.id));
    }
  }
  return el('li', {
    class: 'item' + (st.read ? ' read' : ' unread') + (st.archived ? ' archived' : ''),
    dataset: { name: it.metadata.name, notification: it.spec.notification, read: String(!!st.read) },
  },
  el('div', { class: 'meta' },
    el('span', { class: 'badge ' + type }, type),
    it.spec.category ? el('span', {}, it.spec.category) : null,
    el('time', { datetime: when(it).toISOString() }, fmt(when(it))),
    st.read ? el('span', { class: 'read-time' }, 'read ' + fmt(st.readTime)) : el('span', {}, 'unread')),
  el('h3', { class: 'title' }, it.spec.title || it.spec.notification),
  it.spec.message ? el('p', { class: 'message' }, it.spec.message) : null,
  actions,
  response);
}

function render() {
  const items = [...state.items.values()]
    .filter((it) => state.showArchived || !(it.status && it.status.archived))
    .sort((a, b) => when(b) - when(a));
  $('#items').replaceChildren(...items.map(renderItem));
  $('#empty').hidden = !state.user || items.length > 0;
  const unread = items.filter((it) => !(it.status && it.status.read)).length;
  document.title = (unread ? '(' + unread + ') ' : '') + 'Herald inbox (dev)';
}

async function refreshSinks() {
  try {
    const msgs = await (await fetch('/api/sinks')).json();
    $('#sinks').replaceChildren(...msgs.slice(-15).reverse().map((m) =>
      el('li', {}, el('span', { class: 'sink' }, m.sink), ' → ' + (m.to || '?') + ': ' + (m.text || ''))));
  } catch (_) { /* herald dev stopped */ }
}

$('#show-archived').addEventListener('change', (e) => { state.showArchived = e.target.checked; render(); });
load().catch((err) => { showProblem('Cannot load the configuration: ' + err); setStatus('error', 'down'); });
refreshSinks();
setInterval(refreshSinks, 5000);
