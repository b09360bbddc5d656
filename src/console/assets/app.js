// The console's page logic. Every value from the server is put in the page as text
// (textContent), never as HTML: file names and mail come from users and attackers alike.
'use strict';

const $ = (sel) => document.querySelector(sel);
// The session token lives in this tab's sessionStorage and goes out only in a header the page
// sets itself: no cookie, so no other site or port of this host ever receives it.
const TOKEN_KEY = 'bmbackup-session';
const state = { snapshots: [], browse: { id: '', path: [] }, wiz: {}, jobs: {} };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function size(n) {
  if (n === null || n === undefined) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}

// How long ago a time in ns was, in words ("3 h ago", "2 days ago").
function age(ns) {
  const s = (Date.now() - ns / 1e6) / 1000;
  if (s < 90) return 'just now';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  if (s < 36 * 3600) return Math.round(s / 3600) + ' h ago';
  const d = Math.round(s / 86400);
  return d + (d === 1 ? ' day' : ' days') + ' ago';
}

function plural(n, one, many) { return n + ' ' + (n === 1 ? one : (many || one + 's')); }

function when(iso) { return iso ? iso.replace('T', ' ').replace(/\.\d+/, '').replace('Z', '') : ''; }

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'omit' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) opts.headers['X-Bmbackup-Session'] = token;
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body || {});
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && path !== '/api/login') { showLogin(); }
  if (!r.ok) throw new Error(data.error || ('HTTP ' + r.status));
  return data;
}

function showError(e) { $('#error').textContent = e ? String(e.message || e) : ''; }

function showLogin() {
  $('#nav').hidden = true;
  document.querySelectorAll('main > section').forEach((s) => { s.hidden = s.id !== 'page-login'; });
}

function show(page) {
  showError('');
  document.querySelectorAll('main > section').forEach((s) => { s.hidden = s.id !== 'page-' + page; });
  document.querySelectorAll('#nav button[data-page]').forEach((b) => b.classList.toggle('active', b.dataset.page === page));
  const load = { overview: loadOverview, timeline: loadTimeline, browse: loadBrowse, restore: loadRestore, runs: loadRuns, backup: loadBackup }[page];
  if (load) load().catch(showError);
}

async function login(ev) {
  ev.preventDefault();
  $('#login-error').textContent = '';
  try {
    const r = await api('POST', '/api/login', { password: $('#password').value });
    sessionStorage.setItem(TOKEN_KEY, r.token);
    $('#password').value = '';
    $('#nav').hidden = false;
    show('overview');
  } catch (e) {
    $('#login-error').textContent = e.message;
  }
}

async function loadSnapshots() {
  state.snapshots = await api('GET', '/api/snapshots');
  return state.snapshots;
}

async function loadOverview() {
  const o = await api('GET', '/api/overview');
  $('#ov-host').textContent = 'this server: ' + o.host;
  const w = $('#warnings');
  w.replaceChildren(...o.warnings.map((t) => el('li', t)));
  const tb = $('#overview tbody');
  tb.replaceChildren(...o.parts.map((p) => {
    const tr = el('tr');
    const l = p.last || {};
    tr.append(el('td', p.host), el('td', p.part), el('td', when(l.started)),
      el('td', l.status, 'status-' + l.status), el('td', l.seconds !== undefined ? l.seconds.toFixed(1) + ' s' : '', 'num'),
      el('td', l.files, 'num'), el('td', size(l.bytes_added), 'num'), el('td', p.snapshots, 'num'));
    return tr;
  }));
  const r = o.retention;
  $('#ov-retention').textContent = r ? Object.entries(r).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => k + ' = ' + v).join(', ') || 'keeps everything' : 'none configured: every snapshot is kept';
  const s = o.stats;
  $('#ov-store').textContent = o.store + ': ' + (s ? size(s.stored_bytes) + ' on disk for ' + size(s.logical_bytes) +
    ' of snapshots (' + (s.logical_bytes && s.stored_bytes ? (s.logical_bytes / s.stored_bytes).toFixed(1) + '× saved' : '') +
    ', ' + s.snapshots + ' snapshots)' : 'figures being computed…') +
    (o.last_check ? '. Last check: ' + when(new Date(o.last_check.finished_ns / 1e6).toISOString()) + ' UTC, ' +
      (o.last_check.ok ? 'passed' : 'FAILED: ' + o.last_check.summary) : '. No check recorded: run `bmbackup check`.');
}

async function loadTimeline() {
  const snaps = await loadSnapshots();
  const byPart = {};
  for (const s of snaps) (byPart[s.host + '/' + s.part] = byPart[s.host + '/' + s.part] || []).push(s);
  const rank = { complete: 0, partial: 1, damaged: 2 };
  const today = Math.floor(Date.now() / 86400000);
  const rows = Object.entries(byPart).map(([name, list]) => {
    const row = el('div', null, 'row');
    row.append(el('span', name, 'label'));
    const days = {};
    for (const s of list) {
      const d = Math.floor(s.started_ns / 86400e9);
      if (!(d in days) || rank[s.status] > rank[days[d].status]) days[d] = s;
    }
    for (let d = today - 59; d <= today; d++) {
      const cell = el('span', null, 'day' + (days[d] ? ' ' + days[d].status : ''));
      const date = new Date(d * 86400000).toISOString().slice(0, 10);
      cell.title = date + (days[d] ? ': ' + days[d].name + ' ' + days[d].status : ': no snapshot');
      row.append(cell);
    }
    return row;
  });
  // A date axis: the first of each week column is labelled.
  const axis = el('div', null, 'row axis');
  axis.append(el('span', 'UTC date', 'label'));
  for (let d = today - 59; d <= today; d++) {
    const date = new Date(d * 86400000).toISOString().slice(5, 10);
    axis.append(el('span', (today - d) % 7 === 0 ? date : '', 'tick'));
  }
  $('#timeline').replaceChildren(...rows, axis);
}

function encPath(parts) { return parts.map((p) => p.enc).join('/'); }

// Browse: a part (host/part), then one of its dates, newest first.
async function loadBrowse() {
  const snaps = await loadSnapshots();
  const parts = [...new Set(snaps.map((s) => s.host + '/' + s.part))].sort();
  const psel = $('#browse-part');
  psel.replaceChildren(...parts.map((p) => { const o = el('option', p); o.value = p; return o; }));
  const cur = snaps.find((s) => s.id === state.browse.id);
  if (!cur) state.browse = { id: '', path: [] };
  psel.value = cur ? cur.host + '/' + cur.part : (parts[0] || '');
  fillDates(psel.value, cur ? cur.id : '');
  await listFolder();
}

function fillDates(part, keep) {
  const list = state.snapshots.filter((s) => s.host + '/' + s.part === part).reverse();
  const sel = $('#browse-snapshot');
  sel.replaceChildren(...list.map((s) => {
    const o = el('option', s.name + ' — ' + age(s.started_ns) + ' — ' + s.status);
    o.value = s.id;
    return o;
  }));
  if (!keep || !list.some((s) => s.id === keep)) state.browse = { id: list.length ? list[0].id : '', path: [] };
  sel.value = state.browse.id;
}

async function listFolder() {
  const b = state.browse;
  if (!b.id) return;
  const d = await api('GET', '/api/ls/' + b.id + '/' + encPath(b.path));
  const crumbs = [{ name: '/', enc: null }].concat(b.path);
  $('#browse-crumbs').replaceChildren(...crumbs.map((c, i) => {
    const btn = el('button', i === 0 ? d.at.host + '/' + d.at.part + ' /' : c.name + ' /');
    btn.addEventListener('click', () => { b.path = b.path.slice(0, i); listFolder().catch(showError); });
    return btn;
  }));
  const tb = $('#browse-list tbody');
  const entries = d.entries || [];
  tb.replaceChildren(...entries.map((e) => {
    const tr = el('tr');
    const name = el('td');
    if (e.kind === 'dir') {
      const btn = el('button', e.name + '/', 'linkish open');
      btn.addEventListener('click', () => { b.path = b.path.concat([{ name: e.name, enc: e.enc }]); listFolder().catch(showError); });
      name.append(btn);
    } else {
      name.append(el('span', e.name + (e.target ? ' → ' + e.target : '')));
    }
    const actions = el('td');
    if (e.kind === 'dir' || e.kind === 'file') {
      const a = el('button', e.kind === 'dir' ? 'download .tar' : 'download', 'linkish download');
      const what = b.path.concat([e]);
      a.addEventListener('click', () => startDownload(b.id, what).catch(showError));
      actions.append(a, ' ');
    }
    const h = el('button', 'history', 'linkish history');
    h.addEventListener('click', () => showHistory(b.path.concat([e])).catch(showError));
    actions.append(h);
    if (e.kind === 'dir' || e.kind === 'file') {
      const r = el('button', 'restore…', 'linkish restore-this');
      r.addEventListener('click', () => restoreFromBrowse(b.path.concat([e])).catch(showError));
      actions.append(' ', r);
    }
    tr.dataset.name = e.name;
    tr.append(name, el('td', e.kind), el('td', e.mode), el('td', (e.owner || e.uid) + ':' + (e.group || e.gid)),
      el('td', e.kind === 'file' ? size(e.size) : '', 'num'), el('td', when(e.mtime)), actions);
    return tr;
  }));
  $('#history').hidden = true;
}

// A download: a single-use ticket asked for with the session, then a plain navigation to it
// (the browser saves the file); the ticket's state says whether the transfer completed, which
// the browser's download bar alone does not tell this page.
async function startDownload(id, path) {
  const name = path.map((p) => p.name).join('/');
  const t = await api('POST', '/api/download/' + id + '/' + encPath(path), {});
  const line = el('li', name + ': downloading…', 'dl-running');
  line.dataset.ticket = t.ticket;
  $('#downloads').prepend(line);
  const a = el('a');
  a.href = t.url;
  a.setAttribute('download', '');
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    const s = await api('GET', '/api/downloads/' + t.ticket);
    if (s.state === 'done') {
      line.textContent = name + ': downloaded, ' + size(s.bytes);
      line.className = 'dl-done';
      return;
    }
    if (s.state === 'failed') {
      line.textContent = name + ': DOWNLOAD FAILED after ' + size(s.bytes) + ' (' + s.error +
        '). The file you saved is incomplete: delete it. Run `bmbackup check` to see the damage.';
      line.className = 'dl-failed';
      return;
    }
    line.textContent = name + ': downloading… ' + size(s.bytes);
  }
}

async function showHistory(path) {
  const rows = await api('GET', '/api/history/' + state.browse.id + '/' + encPath(path));
  $('#history-path').textContent = path.map((p) => p.name).join('/');
  $('#history tbody').replaceChildren(...rows.map((r) => {
    const tr = el('tr');
    tr.append(el('td', r.name), el('td', when(r.date)), el('td', r.state), el('td', r.size === null ? '' : size(r.size), 'num'),
      el('td', r.hash || ''), el('td', r.version ? 'v' + r.version : ''));
    return tr;
  }));
  $('#history').hidden = false;
}

// --- Restore wizard --------------------------------------------------------------------------

async function loadRestore() { await loadKinds(); /* the wizard keeps its other state between visits */ }

// The database kinds the config declares ([db_entities.NAME]) join the wizard's first step.
async function loadKinds() {
  const k = await api('GET', '/api/kinds');
  const box = $('#wiz-kinds');
  box.querySelectorAll('label.db-kind').forEach((l) => l.remove());
  // Calendars and address books go back through Cyrus' CalDAV/CardDAV server.
  for (const [kind, text] of [['calendar', "A user's calendars"], ['contacts', "A user's address books"]]) {
    const label = el('label', null, 'db-kind');
    const r = el('input');
    r.type = 'radio';
    r.name = 'kind';
    r.value = kind;
    r.disabled = !k.dav;
    r.addEventListener('change', () => chooseKind(r.value).catch(showError));
    label.append(r, ' ' + text + (k.dav ? ' (through the CalDAV/CardDAV server)' : ' (set [entities.dav] in the config to restore them)'));
    box.append(label);
  }
  for (const d of k.db) {
    const label = el('label', null, 'db-kind');
    const r = el('input');
    r.type = 'radio';
    r.name = 'kind';
    r.value = d.kind;
    r.addEventListener('change', () => chooseKind(r.value).catch(showError));
    label.append(r, ' ' + d.name + ' of a user, from the database dump (' + d.part + ')' + (d.can_apply ? '' : ', export only'));
    box.append(label);
  }
}

// "restore…" in browse: the wizard, preset to that folder or file of this part at this date.
async function restoreFromBrowse(path) {
  const snap = state.snapshots.find((s) => s.id === state.browse.id);
  if (!snap) return;
  show('restore');
  document.querySelector('input[name=kind][value=folder]').checked = true;
  await chooseKind('folder');
  const w = state.wiz;
  w.object = snap.part;
  w.host = snap.host;
  $('#wiz-object').textContent = snap.host + '/' + snap.part;
  $('#wiz-path').value = path.map((p) => p.name).join('/');
  renderObjects();
  await loadDates();
  $('#wiz-date').value = snap.id;
}

async function chooseKind(kind) {
  const w = state.wiz = { kind, object: '', objects: [], dates: [] };
  $('#wiz-object').textContent = '';
  $('#wiz-path-label').hidden = kind !== 'folder';
  $('#wiz-search').disabled = false;
  $('#wiz-search').value = '';
  const r = await api('GET', '/api/entities?kind=' + encodeURIComponent(kind));
  w.objects = r.objects;
  $('#wiz-source').textContent = r.why ? r.why : 'from ' + r.source;
  $('#wiz-source').className = r.why ? 'error' : 'muted';
  renderObjects();
  $('#wiz-date').replaceChildren();
  if (kind === 'server') await loadDates();
}

function renderObjects() {
  const w = state.wiz;
  const q = $('#wiz-search').value.toLowerCase();
  const list = w.objects.filter((o) => o.name.toLowerCase().includes(q)).slice(0, 500);
  $('#wiz-objects').replaceChildren(...list.map((o) => {
    const label = o.name + (o.host ? ' (' + o.host + ')' : '') + (o.folders ? ' — ' + o.folders + ' folders' : '');
    const b = el('button', label, 'object' + (o.name === w.object ? ' chosen' : ''));
    b.dataset.name = o.name;
    b.addEventListener('click', () => {
      w.object = o.name;
      w.host = o.host;
      $('#wiz-object').textContent = o.name + (o.host ? ' on ' + o.host : '');
      renderObjects();
      loadDates().catch(showError);
    });
    return b;
  }));
}

async function loadDates() {
  const w = state.wiz;
  let q = '/api/dates?kind=' + encodeURIComponent(w.kind);
  if (w.kind === 'folder') q += '&part=' + encodeURIComponent(w.object) + '&host=' + encodeURIComponent(w.host || '');
  if (w.kind === 'server' && w.object) q += '&host=' + encodeURIComponent(w.object);
  if ((['user', 'archive', 'shared', 'calendar', 'contacts'].includes(w.kind) || w.kind.startsWith('db:')) && w.host) q += '&host=' + encodeURIComponent(w.host);
  w.dates = await api('GET', q);
  const sel = $('#wiz-date');
  sel.disabled = false;
  sel.replaceChildren(...w.dates.map((d) => {
    const status = d.status === 'complete' ? '' : ' — ' + d.status.toUpperCase() + (d.problems ? ' (' + plural(d.problems, 'file') + ' missing)' : '');
    const o = el('option', d.name + ' (' + d.part + ') — ' + age(d.started_ns) + status);
    o.value = d.id;
    return o;
  }));
  $('#wiz-date-why').textContent = w.dates.length ? '' : 'no snapshot of this ' + (w.kind === 'folder' ? 'part' : 'object') + ' on ' + (w.host || 'this host');
}

function shortcut(days) {
  const w = state.wiz;
  const limit = (Date.now() - days * 86400000) * 1e6;
  const d = (w.dates || []).find((x) => x.started_ns <= limit);
  if (!d) { showError('no snapshot ' + days + ' days old or older'); return; }
  $('#wiz-date').value = d.id;
}

function wizardBody() {
  const w = state.wiz;
  const dest = document.querySelector('input[name=dest]:checked').value;
  return { kind: w.kind, object: w.object, snapshot: $('#wiz-date').value, dest, to: $('#wiz-to').value, path: $('#wiz-path').value };
}

async function planRestore() {
  const p = await api('POST', '/api/restore/plan', wizardBody());
  state.wiz.removes = p.removes;
  const out = $('#wiz-plan-out');
  out.replaceChildren(el('p', p.what), ...p.items.map((i) => el('div', '• ' + i)), ...p.notes.map((n) => el('div', 'note: ' + n, 'muted')));
  $('#wiz-confirm').hidden = !p.removes.length;
  $('#wiz-removes').replaceChildren(...p.removes.map((r) => el('li', r)));
  $('#wiz-confirm-box').checked = false;
  $('#wiz-run').disabled = false;
}

async function runRestore() {
  const body = wizardBody();
  if ((state.wiz.removes || []).length) {
    if (!$('#wiz-confirm-box').checked) { showError('tick the confirmation first: it names what will be replaced'); return; }
    body.confirm = state.wiz.removes;
  }
  $('#wiz-run').disabled = true;
  $('#wiz-next').hidden = true;
  const r = await api('POST', '/api/restore/run', body);
  await follow(r.job, (j) => {
    $('#wiz-progress').value = j.percent || 0;
    $('#wiz-status').textContent = j.running ? 'running' : j.outcome;
    $('#wiz-figures').textContent = plural(j.files, 'file') + ', ' + size(j.bytes) + (j.running ? '' : ' written');
    $('#wiz-status').className = 'status-' + (j.outcome || '');
    $('#wiz-log').textContent = j.log.join('\n');
    if (!j.running && (j.next.length || j.explain)) {
      $('#wiz-explain').textContent = j.explain;
      $('#wiz-commands').textContent = j.next.join('\n');
      $('#wiz-next').hidden = false;
    }
  });
}

async function follow(id, draw) {
  for (;;) {
    const j = await api('GET', '/api/jobs/' + id);
    draw(j);
    if (!j.running) return j;
    await new Promise((res) => setTimeout(res, 500));
  }
}

// --- Runs and check --------------------------------------------------------------------------

async function loadRuns() {
  const r = await api('GET', '/api/runs');
  const tb = $('#runs tbody');
  tb.replaceChildren(...r.snapshots.map((s) => {
    const tr = el('tr');
    tr.append(el('td', when(s.started)), el('td', age(s.started_ns)), el('td', s.host + '/' + s.part),
      el('td', s.status, 'status-' + s.status), el('td', s.seconds.toFixed(1) + ' s', 'num'),
      el('td', s.files, 'num'), el('td', size(s.bytes), 'num'), el('td', size(s.bytes_added), 'num'),
      el('td', s.problems ? plural(s.problems, 'file') + ' not read: ' + s.problem_lines.join('; ') : ''));
    return tr;
  }));
  const m = r.metrics;
  $('#runs-metrics').textContent = !m ? 'No metrics_dir in the config: runs that fail before writing a snapshot show only in the journal.'
    : m.error ? 'metrics file ' + m.file + ': ' + m.error
      : 'Last run (' + m.file + '): ' + m.samples.filter((x) => !x.labels || x.name === 'bmbackup_status')
        .map((x) => x.name.replace('bmbackup_', '') + (x.labels ? '{' + x.labels + '}' : '') + ' = ' + x.value).join(', ');
  const c = r.last_check;
  $('#check-last').textContent = c ? 'Last check: ' + when(new Date(c.finished_ns / 1e6).toISOString()) + ' UTC (' +
    age(c.finished_ns) + '), ' + (c.ok ? 'passed' : 'FAILED') + ': ' + c.summary + (c.read_data ? ' (data read)' : ' (structure only)')
    : 'No check recorded yet.';
  $('#check-run').disabled = !!r.check_running;
}

async function runCheck() {
  $('#check-run').disabled = true;
  try {
    const pct = Number($('#check-percent').value) || 0;
    const r = await api('POST', '/api/check/run', { read_data_percent: pct });
    await follow(r.job, (j) => {
      $('#check-status').textContent = j.running ? 'checking…' : (j.outcome === 'complete' ? 'no damage' : 'DAMAGE FOUND');
      $('#check-status').className = 'status-' + (j.outcome || '');
      $('#check-log').textContent = j.log.join('\n');
    });
    await loadRuns();
  } finally {
    $('#check-run').disabled = false;
  }
}

// --- Backup ----------------------------------------------------------------------------------

async function loadBackup() {
  const p = await api('GET', '/api/policy');
  const box = $('#policy');
  const rows = [['config file', p.config_file || '(none: defaults)'], ['store', p.store], ['host', p.host],
    ['backup_emails', p.backup_emails], ['backup_archived_emails', p.backup_archived_emails],
    ['one_file_system', p.one_file_system], ['compression_level', p.compression_level],
    ['retention', p.retention ? JSON.stringify(p.retention) : 'none']];
  const t = el('table');
  for (const [k, v] of rows) { const tr = el('tr'); tr.append(el('th', k), el('td', v)); t.append(tr); }
  const parts = el('table');
  const head = el('tr');
  head.append(el('th', 'part'), el('th', 'path'), el('th', 'backed up'), el('th', 'hooks'));
  parts.append(head);
  for (const x of p.parts) {
    const tr = el('tr');
    tr.append(el('td', x.name), el('td', x.path), el('td', x.skipped_because ? 'no: ' + x.skipped_because : 'yes'),
      el('td', [x.pre && 'pre: ' + x.pre, x.post && 'post: ' + x.post].filter(Boolean).join('; ')));
    parts.append(tr);
  }
  box.replaceChildren(t, el('h4', 'Parts'), parts);
}

async function runBackup() {
  $('#backup-run').disabled = true;
  try {
    const r = await api('POST', '/api/backup/run', {});
    $('#backup-progress').hidden = false;
    await follow(r.job, (j) => {
      $('#backup-status').textContent = j.running ? 'running' : j.outcome;
      if (j.part) $('#backup-figures').textContent = j.part.part + ': ' + plural(j.part.files, 'file') + ', ' + size(j.part.bytes_read) + ' read' + (j.running ? '' : ' (last part)');
      $('#backup-status').className = 'status-' + (j.outcome || '');
      $('#backup-part').textContent = j.part ? j.part.part + ': ' + j.part.files + ' files, ' + size(j.part.bytes_read) + ' read' : '';
      $('#backup-log').textContent = j.log.join('\n');
      $('#backup-progress').hidden = !j.running;
    });
  } finally {
    $('#backup-run').disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', login);
  document.querySelectorAll('#nav button[data-page]').forEach((b) => b.addEventListener('click', () => show(b.dataset.page)));
  $('#logout').addEventListener('click', () => api('POST', '/api/logout')
    .then(() => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); }).catch(showError));
  $('#browse-part').addEventListener('change', (ev) => { fillDates(ev.target.value, ''); listFolder().catch(showError); });
  $('#browse-snapshot').addEventListener('change', (ev) => { state.browse = { id: ev.target.value, path: state.browse.path }; listFolder().catch(() => { state.browse.path = []; listFolder().catch(showError); }); });
  $('#check-run').addEventListener('click', () => runCheck().catch(showError));
  document.querySelectorAll('input[name=kind]').forEach((r) => r.addEventListener('change', () => chooseKind(r.value).catch(showError)));
  $('#wiz-search').addEventListener('input', renderObjects);
  document.querySelectorAll('.shortcut').forEach((b) => b.addEventListener('click', () => shortcut(Number(b.dataset.days))));
  $('#wiz-plan').addEventListener('click', () => planRestore().catch(showError));
  $('#wiz-run').addEventListener('click', () => runRestore().catch((e) => { showError(e); $('#wiz-run').disabled = false; }));
  $('#wiz-copy').addEventListener('click', () => navigator.clipboard.writeText($('#wiz-commands').textContent).catch(showError));
  $('#backup-run').addEventListener('click', () => runBackup().catch(showError));
  // A session still open (the page reloaded): straight to the overview.
  if (sessionStorage.getItem(TOKEN_KEY)) {
    api('GET', '/api/session').then(() => { $('#nav').hidden = false; show('overview'); }).catch(() => showLogin());
  } else {
    showLogin();
  }
});
