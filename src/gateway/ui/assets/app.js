// Release Coordinator dashboard: the little script behind the server-rendered pages of /ui.
// - keeps pages live by following GET /events/stream (Server-Sent Events, read with fetch so
//   a bearer token can be sent when reads are not public; resumes with Last-Event-ID);
// - sends every change through the REST API with the signed-in token (session storage);
// - shows API errors in words in the alert region, and asks before every action.
// Plain browser JavaScript, no build step, no dependencies.

const TOKEN_KEY = 'rc.token';
const SIGNED_OUT_KEY = 'rc.signedOut';
const FINAL_RELEASE = new Set(['published', 'canceled', 'failed']);
const ACTIVE_TASK = new Set(['running', 'publishing', 'initialized', 'waiting']);
// States only move forward along these ranks, so a replayed (older) event never undoes a newer one.
const RELEASE_RANK = {
  waiting: 0,
  initializing: 1,
  running: 2,
  staged: 3,
  publishing: 4,
  canceling: 6,
  published: 9,
  canceled: 9,
  failed: 9,
};
const TASK_RANK = {
  waiting: 0,
  initialized: 1,
  running: 2,
  staged: 3,
  publishing: 4,
  published: 5,
  rejected: 9,
  failed: 9,
  canceled: 9,
};
const isBehind = (ranks, current, next) => current in ranks && next in ranks && ranks[next] < ranks[current];

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const body = document.body;
const page = body.dataset.page;
const publicReads = body.dataset.publicReads !== 'false';

// ---------------------------------------------------------------- token

const storage = {
  get: (k) => {
    try {
      return sessionStorage.getItem(k);
    } catch {
      return null;
    }
  },
  set: (k, v) => {
    try {
      if (v === null) sessionStorage.removeItem(k);
      else sessionStorage.setItem(k, v);
    } catch {
      // storage unavailable (private mode): the token lives only on this page
    }
  },
};

const token = () => storage.get(TOKEN_KEY) || '';

function claims(jwt) {
  try {
    const part = jwt.split('.')[1] || '';
    const binary = atob(
      part
        .replace(/-/g, '+')
        .replace(/_/g, '/')
        .padEnd(Math.ceil(part.length / 4) * 4, '='),
    );
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (ch) => ch.charCodeAt(0))));
  } catch {
    return null;
  }
}

function describeToken(jwt) {
  const c = claims(jwt);
  if (!c) return { label: 'Signed in (token not readable)', expired: false };
  const roles = new Set();
  for (const [k, v] of Object.entries(c)) {
    if (/roles$/i.test(k) && Array.isArray(v)) for (const r of v) roles.add(String(r).toUpperCase());
  }
  for (const r of c.context?.user?.roles ?? []) roles.add(String(r).toUpperCase());
  const name = c.preferred_username || c.context?.user?.name || c.email || c.sub || 'unknown';
  const expired = typeof c.exp === 'number' && c.exp * 1000 < Date.now();
  const roleText = roles.size ? ` · ${[...roles].join(', ')}` : '';
  return { label: `${expired ? 'Token expired: ' : 'Signed in as '}${name}${roleText}`, expired };
}

function showWho() {
  const who = $('#who');
  const button = $('#signin-open');
  const t = token();
  if (!t) {
    who.textContent = 'Not signed in';
    who.dataset.state = 'anonymous';
    button.textContent = 'Sign in';
    return;
  }
  const d = describeToken(t);
  who.textContent = d.label;
  who.dataset.state = d.expired ? 'expired' : 'signed-in';
  button.textContent = 'Token…';
}

function setupSignIn() {
  const dialog = $('#signin-dialog');
  const input = $('#token-input');
  const demoToken = input.dataset.demo === 'true' ? input.value.trim() : '';
  if (!token() && demoToken && !storage.get(SIGNED_OUT_KEY)) storage.set(TOKEN_KEY, demoToken);
  showWho();
  $('#signin-open').addEventListener('click', () => {
    input.value = token() || demoToken;
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
    input.select();
  });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'save') {
      const value = input.value.trim().replace(/^Bearer\s+/i, '');
      storage.set(TOKEN_KEY, value || null);
      storage.set(SIGNED_OUT_KEY, value ? null : '1');
      notice(value ? 'Token saved for this tab.' : 'Signed out.');
    } else if (dialog.returnValue === 'signout') {
      storage.set(TOKEN_KEY, null);
      storage.set(SIGNED_OUT_KEY, '1');
      notice('Signed out.');
    } else {
      return;
    }
    showWho();
    clearErrors();
    if (body.dataset.needsToken === 'true') loadMain();
  });
}

// ---------------------------------------------------------------- messages

function showError(message) {
  const box = $('#alerts');
  const item = document.createElement('div');
  item.className = 'alert';
  const text = document.createElement('p');
  text.textContent = message;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'dismiss';
  close.textContent = 'Dismiss';
  close.addEventListener('click', () => item.remove());
  item.append(text, close);
  box.append(item);
  while (box.children.length > 3) box.firstElementChild.remove();
}

function clearErrors() {
  $('#alerts').replaceChildren();
}

let noticeTimer;
function notice(message) {
  const box = $('#notice');
  box.textContent = message;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    box.textContent = '';
  }, 8000);
}

/** An API error body in words: `{detail}` or `{field: [messages]}`. */
function errorText(status, data) {
  if (data && typeof data === 'object') {
    if (typeof data.detail === 'string') return data.detail;
    const parts = Object.entries(data).map(
      ([field, v]) =>
        `${field}: ${Array.isArray(v) ? v.join(' ') : typeof v === 'string' ? v : JSON.stringify(v)}`,
    );
    if (parts.length) return parts.join('; ');
  }
  if (typeof data === 'string' && data.trim()) return data.trim().slice(0, 300);
  return `the coordinator answered HTTP ${status}`;
}

function failureMessage(what, res) {
  let text = `${what} failed: ${errorText(res.status, res.data)} (HTTP ${res.status})`;
  if (res.status === 401) text += ' Sign in with a valid bearer token (button at the top right).';
  if (res.status === 403) text += ' Your token does not have the role this needs.';
  return text;
}

// ---------------------------------------------------------------- REST calls

async function readBody(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A REST call with the signed-in token; never throws (a network failure is status 0). */
async function api(method, path, payload, headers = {}) {
  const h = { accept: 'application/json', ...headers };
  const t = token();
  if (t) h.authorization = `Bearer ${t}`;
  if (payload !== undefined) h['content-type'] = 'application/json';
  try {
    const res = await fetch(path, {
      method,
      headers: h,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      cache: 'no-store',
    });
    return { ok: res.ok, status: res.status, data: await readBody(res) };
  } catch (err) {
    return {
      ok: false,
      status: 0,
      data: { detail: `the coordinator could not be reached (${err.message})` },
    };
  }
}

const readHeaders = () => {
  const t = token();
  return !publicReads && t ? { authorization: `Bearer ${t}` } : {};
};

/** The main content of this page (or another), rendered by the server, as a detached document. */
async function fetchFragment(url = location.pathname + location.search) {
  const res = await fetch(url, { headers: { 'x-ui-fragment': '1', ...readHeaders() }, cache: 'no-store' });
  if (!res.ok) {
    const data = await readBody(res);
    throw new Error(`${errorText(res.status, data)} (HTTP ${res.status})`);
  }
  const html = await res.text();
  return new DOMParser().parseFromString(`<!doctype html><body>${html}</body>`, 'text/html');
}

/** Replaces the elements with these ids by their fresh server rendering; stale answers are dropped. */
function refresher(ids, after) {
  let timer;
  let generation = 0;
  return (delay = 250) => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++generation;
      try {
        const doc = await fetchFragment();
        if (mine !== generation) return;
        for (const id of ids) {
          const fresh = doc.getElementById(id);
          const current = document.getElementById(id);
          if (fresh && current) current.replaceWith(document.adoptNode(fresh));
        }
        localTimes();
        after?.(doc);
      } catch (err) {
        showError(`Refreshing the page failed: ${err.message}`);
      }
    }, delay);
  };
}

// ---------------------------------------------------------------- confirmation

function confirmAction(title, message, okLabel) {
  const dialog = $('#confirm-dialog');
  if (typeof dialog.showModal !== 'function')
    return Promise.resolve(window.confirm(`${title}\n\n${message}`));
  $('#confirm-title').textContent = title;
  $('#confirm-message').textContent = message;
  $('#confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  $('#confirm-cancel').focus();
  return new Promise((resolve) =>
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }),
  );
}

// ---------------------------------------------------------------- live feed

function setLive(state, text) {
  const el = $('#live-status');
  if (!el) return;
  el.dataset.live = state;
  el.textContent = text;
}

/**
 * Follows GET /events/stream: calls onEvent(notification) for every transition, once per id.
 * Reconnects with backoff and resumes after the last event seen (Last-Event-ID).
 */
function follow(path, onEvent) {
  let lastId = '';
  let attempt = 0;
  const seen = new Set();
  const dispatch = (block) => {
    let event = 'message';
    let id = '';
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'id') id = value;
      else if (field === 'data') data.push(value);
    }
    if (id) lastId = id;
    if (event === 'ready' || data.length === 0) return;
    let n;
    try {
      n = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    if (!n || typeof n.type !== 'string' || seen.has(n.id)) return;
    seen.add(n.id);
    if (seen.size > 5000) seen.clear();
    try {
      onEvent(n);
    } catch (err) {
      console.error('live update failed', err);
    }
  };
  const run = async () => {
    for (;;) {
      try {
        const headers = { accept: 'text/event-stream', ...readHeaders() };
        if (lastId) headers['last-event-id'] = lastId;
        const res = await fetch(path, { headers, cache: 'no-store' });
        if (!res.ok || !res.body) {
          const data = await readBody(res);
          const text = `${errorText(res.status, data)} (HTTP ${res.status})`;
          if (res.status >= 400 && res.status < 500) {
            setLive('off', 'Not live');
            showError(`Live updates are off: ${text}`);
            return;
          }
          throw new Error(text);
        }
        setLive('on', 'Live');
        attempt = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, '\n');
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf('\n\n');
          }
        }
      } catch {
        // network error: reconnect below
      }
      attempt += 1;
      setLive('reconnecting', 'Reconnecting…');
      await new Promise((r) => setTimeout(r, Math.min(15_000, 500 * 2 ** attempt)));
    }
  };
  run();
}

// ---------------------------------------------------------------- shared bits

function localTimes(root = document) {
  for (const el of $$('time[datetime]', root)) {
    const d = new Date(el.getAttribute('datetime'));
    if (Number.isNaN(d.getTime())) continue;
    el.title = d.toISOString();
    el.textContent = d.toLocaleString(undefined, {
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  }
}

function setBadge(el, state) {
  if (!el || el.dataset.state === state) return;
  el.className = `badge state-${state}`;
  el.dataset.state = state;
  el.textContent = state;
}

const idOf = (ref) => (typeof ref === 'string' ? ref.split('/').filter(Boolean).pop() || '' : '');

async function withBusy(button, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } finally {
    if (button) button.disabled = false;
  }
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; getRandomValues does not). */
function freshKey() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Where a form's fields and their messages are: the form, or what its data-fields names. */
const fieldScope = (form) => (form.dataset.fields ? $(form.dataset.fields) : form);

/** Clears the messages next to a form's fields. */
function clearFieldErrors(form) {
  const scope = fieldScope(form);
  for (const el of $$('[data-error-for]', scope)) el.textContent = '';
  for (const el of $$('[aria-invalid]', scope)) el.removeAttribute('aria-invalid');
}

/**
 * Shows an API error next to the fields it names: a 400 `{field: [messages]}`, or a 409 whose
 * detail names one ("… with this URL …"). Returns whether any field got a message.
 */
function showFieldErrors(form, res, fieldOf409 = () => undefined) {
  const data = res.data && typeof res.data === 'object' ? res.data : {};
  const messages =
    res.status === 400 && !data.detail
      ? Object.entries(data)
      : res.status === 409 && typeof data.detail === 'string' && fieldOf409(data.detail)
        ? [[fieldOf409(data.detail), data.detail]]
        : [];
  let shown = false;
  for (const [name, text] of messages) {
    const slot = $(`[data-error-for="${CSS.escape(name)}"]`, fieldScope(form));
    if (!slot) continue;
    slot.textContent = Array.isArray(text) ? text.join(' ') : String(text);
    const input = form.elements.namedItem(name);
    if (input && 'setAttribute' in input) input.setAttribute('aria-invalid', 'true');
    slot.closest('details')?.setAttribute('open', '');
    shown = true;
  }
  return shown;
}

// ---------------------------------------------------------------- release page

const RUN_AGAIN = ' (run again)';
const NAME_MAX = 256;

/** "November" → "November (run again)"; a name that says so already is not extended twice. */
function runAgainName(name) {
  const base = name.replace(/\s*\(run again\)\s*$/i, '');
  return `${base.slice(0, NAME_MAX - RUN_AGAIN.length)}${RUN_AGAIN}`;
}

function releasePage() {
  const releaseId = body.dataset.release;
  if (!releaseId || !$('#release-state')) return;
  const tbody = $('#task-rows');

  const setProgress = (row, progress) => {
    const bar = $('progress', row);
    const pct = $('.pct', row);
    if (progress === null || progress === undefined || Number.isNaN(Number(progress))) {
      bar.value = 0;
      pct.textContent = '—';
      return;
    }
    const p = Math.max(0, Math.min(100, Math.round(Number(progress))));
    bar.value = p;
    pct.textContent = `${p}%`;
  };

  const upsertTask = (t) => {
    let row = tbody.querySelector(`tr[data-task="${CSS.escape(t.kf_id)}"]`);
    if (!row) {
      row = $('#task-row-template').content.firstElementChild.cloneNode(true);
      row.dataset.task = t.kf_id;
      const link = $('.service a', row);
      link.textContent = t.service_name || idOf(t.task_service);
      link.href = `/ui/services#${idOf(t.task_service)}`;
      $('progress', row).setAttribute('aria-label', `Progress of ${link.textContent}`);
      $('.id', row).textContent = t.kf_id;
      tbody.append(row);
      $('#tasks-wrap').hidden = false;
      $('#no-tasks').hidden = true;
    }
    if (isBehind(TASK_RANK, row.dataset.state, t.state)) return;
    // within one state progress only rises: an older event does not lower it
    const older = row.dataset.state === t.state && Number(t.progress) < $('progress', row).value;
    row.dataset.state = t.state;
    setBadge($('.badge', row), t.state);
    if (t.progress !== undefined && !older) setProgress(row, t.progress);
  };

  const showActions = (state) => {
    $('[data-action="publish"]').hidden = state !== 'staged';
    $('[data-action="cancel"]').hidden = FINAL_RELEASE.has(state);
    $('[data-action="run-again"]').hidden = !FINAL_RELEASE.has(state);
  };

  const setReleaseState = (state, halt) => {
    const badge = $('#release-state');
    if (badge.dataset.state === state || isBehind(RELEASE_RANK, badge.dataset.state, state)) return false;
    setBadge(badge, state);
    showActions(state);
    // the banner is swapped in by the refresh; this polite notice is what a screen reader hears
    const cause = halt?.service_name ? ` (${halt.service_name}: ${halt.message})` : '';
    notice(`Release ${releaseId} is now ${state}${FINAL_RELEASE.has(state) ? cause : ''}.`);
    return true;
  };

  // the halt banner, facts (who published or canceled), the phase chart and durations are
  // rendered by the server: they are replaced as a whole
  const refresh = refresher(['timeline', 'notes', 'halt-area', 'release-facts', 'phases-card'], (doc) => {
    // progress moves without transitions: take it from the fresh rendering when the state agrees
    for (const fresh of $$('tr[data-task]', doc)) {
      const row = tbody.querySelector(`tr[data-task="${CSS.escape(fresh.dataset.task)}"]`);
      if (!row) continue;
      if (row.dataset.state === fresh.dataset.state) {
        $('progress', row).value = $('progress', fresh).value;
        $('.pct', row).textContent = $('.pct', fresh).textContent;
      }
    }
  });

  follow(
    `/events/stream?release=${encodeURIComponent(releaseId)}&since=${encodeURIComponent(body.dataset.since || '')}`,
    (n) => {
      const d = n.data || {};
      if (n.type.startsWith('release.')) {
        if (d.kf_id !== releaseId) return;
        const current = $('#release-state').dataset.state;
        if (!isBehind(RELEASE_RANK, current, d.state)) {
          setReleaseState(d.state, d.halt);
          if (d.version) $('#release-version').textContent = d.version;
        }
        for (const t of d.tasks || []) upsertTask(t);
      } else if (n.type.startsWith('task.')) {
        if (d.release_id && d.release_id !== releaseId) return;
        upsertTask(d);
      }
      refresh();
    },
  );

  // progress of running tasks is read from the database every few seconds (no event carries it);
  // while the release is not final the chart's axis ends now, so it moves on slowly too
  let ticks = 0;
  setInterval(() => {
    if (document.hidden) return;
    ticks += 1;
    if ($$('tr[data-task]', tbody).some((r) => ACTIVE_TASK.has(r.dataset.state))) refresh(0);
    else if (!FINAL_RELEASE.has($('#release-state').dataset.state) && ticks % 5 === 0) refresh(0);
  }, 3000);

  $('[data-action="publish"]').addEventListener('click', async (e) => {
    const version = $('#release-version').textContent;
    const ok = await confirmAction(
      'Publish this release?',
      `Every task service of ${releaseId} (staged as ${version}) will make its data public.`,
      'Publish',
    );
    if (!ok) return;
    await withBusy(e.currentTarget, async () => {
      const res = await api('POST', `/releases/${releaseId}/publish`);
      if (!res.ok) return showError(failureMessage('Publish', res));
      clearErrors();
      notice(res.status === 202 ? 'Publish accepted; the coordinator will apply it shortly.' : 'Publishing…');
    });
  });

  $('[data-action="cancel"]').addEventListener('click', async (e) => {
    const ok = await confirmAction(
      'Cancel this release?',
      `Every task of ${releaseId} will be canceled. This cannot be undone.`,
      'Cancel release',
    );
    if (!ok) return;
    await withBusy(e.currentTarget, async () => {
      const res = await api('DELETE', `/releases/${releaseId}`);
      if (!res.ok) return showError(failureMessage('Cancel', res));
      clearErrors();
      if (res.data?.state) setReleaseState(res.data.state);
      notice('Cancel requested.');
    });
  });

  let runAgainKey = freshKey();
  $('[data-action="run-again"]').addEventListener('click', async (e) => {
    const button = e.currentTarget;
    const current = await withBusy(button, () => api('GET', `/releases/${releaseId}`));
    if (!current.ok) return showError(failureMessage(`Reading ${releaseId}`, current));
    const r = current.data;
    const name = runAgainName(r.name);
    const studies = r.studies.join(', ');
    const ok = await confirmAction(
      'Run this release again?',
      `A new release “${name}” starts with the same ${r.studies.length === 1 ? 'study' : `${r.studies.length} studies`} (${studies}), description, tags and kind (${r.is_major ? 'major' : 'minor'}). ${releaseId} stays as it is.`,
      'Run again',
    );
    if (!ok) return;
    await withBusy(button, async () => {
      const payload = {
        name,
        description: r.description,
        studies: r.studies,
        tags: r.tags,
        is_major: r.is_major,
      };
      const res = await api('POST', '/releases', payload, { 'idempotency-key': runAgainKey });
      if (!res.ok) return showError(failureMessage('Run again', res));
      clearErrors();
      runAgainKey = freshKey();
      location.assign(`/ui/releases/${encodeURIComponent(res.data.kf_id)}`);
    });
  });

  $('#note-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const text = form.elements.namedItem('description');
    const description = text.value.trim();
    if (!description) {
      showError('Add note failed: write the note first.');
      text.focus();
      return;
    }
    const study = form.elements.namedItem('study').value;
    const ok = await confirmAction(
      'Add this note?',
      `Note on ${study} in ${releaseId}: “${description}”`,
      'Add note',
    );
    if (!ok) return;
    await withBusy($('button[type="submit"]', form), async () => {
      const res = await api('POST', '/release-notes', { release: releaseId, study, description });
      if (!res.ok) return showError(failureMessage('Add note', res));
      clearErrors();
      text.value = '';
      notice('Note added.');
      refresh(0);
    });
  });
}

// ---------------------------------------------------------------- releases list

function releasesPage() {
  const refresh = refresher(['releases']);
  follow(`/events/stream?since=${encodeURIComponent(body.dataset.since || '')}`, (n) => {
    if (!n.type.startsWith('release.')) return;
    const d = n.data || {};
    const row = $(`tr[data-release="${CSS.escape(d.kf_id || '')}"]`);
    const badge = row && $('.badge', row);
    if (badge && !isBehind(RELEASE_RANK, badge.dataset.state, d.state)) {
      setBadge(badge, d.state);
      if (d.version) $('.version', row).textContent = d.version;
    }
    refresh();
  });
}

// ---------------------------------------------------------------- task services

function servicesPage() {
  setLive('poll', 'Refreshed every 10 s');
  let pending = 0;
  const refresh = refresher(['services']);
  document.addEventListener('change', async (e) => {
    const input = e.target;
    if (!(input instanceof HTMLInputElement) || input.dataset.action !== 'toggle-service') return;
    const enabled = input.checked;
    const name = input.dataset.name;
    const ok = await confirmAction(
      `${enabled ? 'Enable' : 'Disable'} ${name}?`,
      enabled
        ? `${name} will get tasks in new releases and be checked for health again.`
        : `${name} will get no tasks in new releases. Releases already running keep their tasks.`,
      enabled ? 'Enable' : 'Disable',
    );
    if (!ok) {
      input.checked = !enabled;
      return;
    }
    pending += 1;
    input.disabled = true;
    const res = await api('PATCH', `/task-services/${encodeURIComponent(input.dataset.id)}`, { enabled });
    pending -= 1;
    input.disabled = false;
    if (!res.ok) {
      input.checked = !enabled;
      showError(failureMessage(`${enabled ? 'Enabling' : 'Disabling'} ${name}`, res));
      return;
    }
    clearErrors();
    input.checked = !!res.data?.enabled;
    const text = $('.switch-text', input.closest('label'));
    if (text) text.textContent = input.checked ? 'on' : 'off';
    notice(`${name} is ${input.checked ? 'enabled' : 'disabled'}.`);
    refresh(0);
  });
  serviceForm(() => refresh(0));
  // health is not on the event feed: re-read it now and then
  setInterval(() => {
    if (!document.hidden && pending === 0 && !$('#confirm-dialog').open) refresh(0);
  }, 10_000);
}

const optionalNumber = (input) => (input.value.trim() === '' ? undefined : Number(input.value));
const optionalText = (input) => input.value.trim() || undefined;

/** Registers a task service; the API checks GET {url}/status live and answers why it refused. */
function serviceForm(onAdded) {
  const form = $('#service-form');
  if (!form) return;
  const result = $('#service-result');
  const field = (name) => form.elements.namedItem(name);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    const url = field('url').value.trim();
    const payload = {
      name: field('name').value.trim(),
      url,
      description: field('description').value,
      enabled: field('enabled').checked,
      request_timeout_ms: optionalNumber(field('request_timeout_ms')),
      start_timeout_ms: optionalNumber(field('start_timeout_ms')),
      publish_timeout_ms: optionalNumber(field('publish_timeout_ms')),
      token_subject: optionalText(field('token_subject')),
      token_audience: optionalText(field('token_audience')),
    };
    result.dataset.outcome = 'checking';
    result.textContent = url ? `Checking GET ${url.replace(/\/+$/, '')}/status…` : '';
    await withBusy($('#service-submit'), async () => {
      const res = await api('POST', '/task-services', payload);
      if (!res.ok) {
        const named = showFieldErrors(form, res, (detail) =>
          /with this URL/.test(detail) ? 'url' : /with this name/.test(detail) ? 'name' : undefined,
        );
        if (!named) showError(failureMessage('Registering the service', res));
        result.dataset.outcome = 'refused';
        result.textContent = `Not registered: ${errorText(res.status, res.data)}`;
        return;
      }
      clearErrors();
      const s = res.data;
      result.dataset.outcome = 'registered';
      result.textContent = `Registered ${s.name} (${s.kf_id}): GET ${s.url.replace(/\/+$/, '')}/status answered; health ${s.health_status}; ${s.enabled ? 'enabled' : 'disabled'}.`;
      form.reset();
      notice(`${s.name} registered.`);
      onAdded();
    });
  });
}

// ---------------------------------------------------------------- start a release

function newReleasePage() {
  $('#live-status').hidden = true;
  const form = $('#release-form');
  if (!form) return;
  const field = (name) => form.elements.namedItem(name);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    const payload = {
      name: field('name').value.trim(),
      description: field('description').value,
      studies: $$('input[name="studies"]:checked', form).map((i) => i.value),
      tags: field('tags')
        .value.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      is_major: field('is_major').checked,
    };
    const author = field('author').value.trim();
    if (author) payload.author = author;
    await withBusy($('#release-submit'), async () => {
      const key = field('idempotency_key');
      const res = await api('POST', '/releases', payload, { 'idempotency-key': key.value });
      if (!res.ok) {
        showFieldErrors(form, res);
        showError(failureMessage('Starting the release', res));
        return;
      }
      clearErrors();
      key.value = freshKey();
      location.assign(`/ui/releases/${encodeURIComponent(res.data.kf_id)}`);
    });
  });
  studyForm();
}

/** Adds a study (POST /studies) and selects it for the release being started. */
function studyForm() {
  const form = $('#study-form');
  if (!form) return;
  const result = $('#study-result');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    result.textContent = '';
    const kfId = form.elements.namedItem('kf_id').value.trim().toUpperCase();
    const name = form.elements.namedItem('name').value.trim();
    await withBusy($('#study-submit'), async () => {
      const res = await api('POST', '/studies', { kf_id: kfId, name });
      if (!res.ok) {
        if (!showFieldErrors(form, res)) showError(failureMessage('Adding the study', res));
        result.textContent = `Not added: ${errorText(res.status, res.data)}`;
        return;
      }
      clearErrors();
      const item = $('#study-check-template').content.firstElementChild.cloneNode(true);
      const box = $('input', item);
      box.value = res.data.kf_id;
      box.checked = true;
      $('.id', item).textContent = res.data.kf_id;
      $('.study-name', item).textContent = res.data.name;
      $('#study-list').append(item);
      $('#no-studies').hidden = true;
      form.reset();
      result.textContent = `Added ${res.data.kf_id}${res.data.name ? ` (${res.data.name})` : ''}; it is selected for this release.`;
    });
  });
}

// ---------------------------------------------------------------- start

const PAGES = {
  release: releasePage,
  releases: releasesPage,
  services: servicesPage,
  'new-release': newReleasePage,
};

/** Reads need a token: fetch the main content with it, then start the page. */
async function loadMain() {
  if (!token()) return;
  try {
    const doc = await fetchFragment();
    $('#main').replaceChildren(...[...doc.body.childNodes].map((n) => document.adoptNode(n)));
    body.dataset.needsToken = 'false';
    startPage();
  } catch (err) {
    showError(`Loading the page failed: ${err.message}`);
  }
}

function startPage() {
  localTimes();
  PAGES[page]?.();
}

setupSignIn();
if (body.dataset.needsToken === 'true') loadMain();
else startPage();
