// The `herald dev` inbox page: a thin host for the <herald-inbox>
// component. It offers the demo users and points the component at herald
// dev's proxy, which impersonates the chosen user:
//   /api/users/{user}/apis/inbox.herald.dev/v1alpha1/...
const $ = (sel) => document.querySelector(sel);
let config = null;

function setStatus(text, state) {
  $('#status').textContent = text;
  $('#status').className = 'status ' + state;
  document.body.dataset.state = state;
}

function showProblem(text) {
  $('#problem').textContent = text || '';
  $('#problem').hidden = !text;
}

function pick(user) {
  for (const b of document.querySelectorAll('#users button')) b.setAttribute('aria-pressed', String(b.dataset.user === user));
  $('#inbox-title').textContent = 'Inbox of ' + user;
  const url = new URL(location.href);
  url.searchParams.set('user', user);
  history.replaceState(null, '', url);
  const inbox = document.createElement('herald-inbox');
  inbox.setAttribute('base', '/api/users/' + encodeURIComponent(user));
  inbox.setAttribute('namespace', config.namespace);
  inbox.setAttribute('open', '');
  inbox.addEventListener('herald-inbox-state', (e) => setStatus(e.detail, e.detail));
  inbox.addEventListener('herald-inbox-counts', (e) => {
    const unread = e.detail.counts.unread || 0;
    document.title = (unread ? '(' + unread + ') ' : '') + 'Herald inbox (dev)';
    refreshSinks();
  });
  $('#host').replaceChildren(inbox);
}

async function load() {
  config = await (await fetch('/api/config')).json();
  $('#mailpit').href = config.mailpitURL;
  $('#mailpit').textContent = 'Mailpit (' + config.mailpitURL + ')';
  $('#users').replaceChildren(...config.users.map((u) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.user = u.username;
    b.title = (u.roles || []).join(', ');
    b.setAttribute('aria-pressed', 'false');
    b.textContent = u.displayName || u.username;
    b.addEventListener('click', () => pick(u.username));
    return b;
  }));
  if (!config.inbox) {
    showProblem('The inbox API is not available: ' + (config.inboxError || 'unknown reason'));
    setStatus('no inbox API', 'down');
    return;
  }
  const wanted = new URLSearchParams(location.search).get('user');
  if (wanted && config.users.some((u) => u.username === wanted)) pick(wanted);
  else setStatus('pick a user', 'idle');
}

async function refreshSinks() {
  try {
    const msgs = await (await fetch('/api/sinks')).json();
    $('#sinks').replaceChildren(...msgs.slice(-15).reverse().map((m) => {
      const li = document.createElement('li');
      const s = document.createElement('span');
      s.className = 'sink';
      s.textContent = m.sink;
      li.append(s, ' → ' + (m.to || '?') + ': ' + (m.text || ''));
      return li;
    }));
  } catch (_) { /* herald dev stopped */ }
}

load().catch((err) => { showProblem('Cannot load the configuration: ' + err); setStatus('error', 'down'); });
refreshSinks();
setInterval(refreshSinks, 5000);
