import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import { formatDuration, releaseAxis } from '../../domain/lifecycle/phases';
import { RELEASE_STATES } from '../../domain/lifecycle/states';
import type { ReleaseWithRelations, TaskRecord } from '../../domain/representations';
import { LIST_PAGE_SIZE, type ReleaseDetail, type ServiceRow } from './data';
import { HaltArea, PhasesCard } from './insight';
import { StateBadge, Time } from './parts';

/** Server-rendered pages of the dashboard (hono/jsx). The client script keeps them live. */

export type PageKind = 'releases' | 'release' | 'services' | 'new-release' | 'error';

export interface LayoutProps {
  title: string;
  page: PageKind;
  /** asset URL suffix that changes with the files (cache busting) */
  assetVersion: string;
  publicReads: boolean;
  /** demo mode only: an ADMIN token the coordinator itself accepts */
  demoToken?: string;
  /** the main content was not rendered: reads need a token (the script loads it with one) */
  needsToken?: boolean;
  release?: string;
  /** live updates replay from here, so nothing between rendering and subscribing is lost */
  since?: string;
}

const NAV: Array<{ page: PageKind; href: string; label: string }> = [
  { page: 'releases', href: '/ui', label: 'Releases' },
  { page: 'new-release', href: '/ui/releases/new', label: 'Start a release' },
  { page: 'services', href: '/ui/services', label: 'Task services' },
];

/** The header: the brand, the main navigation and the session (live status, who, sign in). */
const TopHeader: FC<{ page: PageKind }> = ({ page }) => (
  <header class="top">
    <a class="brand" href="/ui">
      Release Coordinator
    </a>
    <nav aria-label="Main">
      <ul>
        {NAV.map((n) => (
          <li>
            <a href={n.href} aria-current={n.page === page ? 'page' : undefined}>
              {n.label}
            </a>
          </li>
        ))}
        <li>
          <a href="/docs">API</a>
        </li>
      </ul>
    </nav>
    <div class="session">
      <span id="live-status" class="live" data-live="off" role="status">
        Not live
      </span>
      <span id="who">Not signed in</span>
      <button type="button" id="signin-open" aria-haspopup="dialog">
        Sign in
      </button>
    </div>
  </header>
);

/** The sign-in dialog; in demo mode it comes filled with the coordinator's ADMIN token. */
const SignInDialog: FC<{ demoToken?: string }> = ({ demoToken }) => (
  <dialog id="signin-dialog" aria-labelledby="signin-title">
    <form method="dialog" id="signin-form">
      <h2 id="signin-title">Sign in</h2>
      <label for="token-input">Bearer token</label>
      <textarea
        id="token-input"
        name="token"
        rows={6}
        spellcheck={false}
        autocomplete="off"
        aria-describedby="token-hint"
        data-demo={demoToken ? 'true' : undefined}
      >
        {demoToken ?? ''}
      </textarea>
      <p id="token-hint" class="hint">
        {demoToken
          ? 'Demo mode: this is an ADMIN token minted by the coordinator. '
          : 'A JWT from your identity provider. '}
        It is kept in this tab's session storage and sent as <code>Authorization: Bearer …</code> with every
        change.
      </p>
      <div class="buttons">
        <button type="submit" value="signout" id="signout">
          Sign out
        </button>
        <button type="submit" value="cancel" formnovalidate>
          Cancel
        </button>
        <button type="submit" value="save" class="primary" id="signin-save">
          Use token
        </button>
      </div>
    </form>
  </dialog>
);

/** The dialog the script opens before a change that cannot be undone. */
const ConfirmDialog: FC = () => (
  <dialog id="confirm-dialog" aria-labelledby="confirm-title" aria-describedby="confirm-message">
    <form method="dialog">
      <h2 id="confirm-title">Are you sure?</h2>
      <p id="confirm-message" />
      <div class="buttons">
        <button type="submit" value="cancel" id="confirm-cancel">
          Cancel
        </button>
        <button type="submit" value="ok" class="primary" id="confirm-ok">
          Confirm
        </button>
      </div>
    </form>
  </dialog>
);

export const Layout: FC<PropsWithChildren<LayoutProps>> = (p) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="color-scheme" content="light dark" />
      <title>{`${p.title} · Release Coordinator`}</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href={`/ui/assets/app.css?v=${p.assetVersion}`} />
      <script type="module" src={`/ui/assets/app.js?v=${p.assetVersion}`} />
    </head>
    <body
      data-page={p.page}
      data-release={p.release}
      data-since={p.since}
      data-public-reads={String(p.publicReads)}
      data-needs-token={p.needsToken ? 'true' : undefined}
    >
      <a class="skip" href="#main">
        Skip to content
      </a>
      <TopHeader page={p.page} />
      <div id="alerts" class="alerts" role="alert" aria-live="assertive" />
      <div id="notice" class="notice" role="status" aria-live="polite" />
      <main id="main" tabindex={-1}>
        {p.children}
      </main>
      <SignInDialog demoToken={p.demoToken} />
      <ConfirmDialog />
    </body>
  </html>
);

const FINAL = new Set(['published', 'canceled', 'failed']);

const percent = (p: number | null) => (p === null ? null : Math.max(0, Math.min(100, Math.round(p))));

export const TaskRow: FC<{ task?: TaskRecord }> = ({ task }) => {
  const p = task ? percent(task.progress) : null;
  const name = task?.serviceName ?? '';
  return (
    <tr
      id={task ? `task-${task.kfId}` : undefined}
      data-task={task?.kfId ?? ''}
      data-state={task?.state ?? ''}
    >
      <th scope="row" class="service">
        <a href={`/ui/services#${task?.taskServiceId ?? ''}`}>{name}</a>
      </th>
      <td class="state">
        <StateBadge state={task?.state ?? ''} />
      </td>
      <td>
        <div class="progress-cell">
          <progress max={100} value={p ?? 0} aria-label={`Progress of ${name}`} />
          <span class="pct">{p === null ? '—' : `${p}%`}</span>
        </div>
      </td>
      <td class="id wide">{task?.kfId ?? ''}</td>
    </tr>
  );
};

function taskSummary(tasks: TaskRecord[]): string {
  if (tasks.length === 0) return 'no tasks';
  const byState = new Map<string, number>();
  for (const t of tasks) byState.set(t.state, (byState.get(t.state) ?? 0) + 1);
  return [...byState].map(([s, n]) => `${n} ${s}`).join(' · ');
}

/** The state filter of the releases list. */
const StateFilter: FC<{ state?: string }> = ({ state }) => (
  <form class="filters" method="get" action="/ui" id="state-filter-form">
    <label for="state-filter">State</label>
    <select id="state-filter" name="state">
      <option value="" selected={!state}>
        All states
      </option>
      {RELEASE_STATES.map((s) => (
        <option value={s} selected={s === state}>
          {s}
        </option>
      ))}
    </select>
    <button type="submit">Filter</button>
  </form>
);

/** One row per release: name and id, state, version, its tasks in a line, when it was created. */
const ReleasesTable: FC<{ records: ReleaseWithRelations[] }> = ({ records }) => (
  <div class="table-wrap">
    <table class="releases">
      <caption class="visually-hidden">Releases, newest first</caption>
      <thead>
        <tr>
          <th scope="col">Release</th>
          <th scope="col">State</th>
          <th scope="col">Version</th>
          <th scope="col" class="wide">
            Tasks
          </th>
          <th scope="col" class="wide">
            Created
          </th>
        </tr>
      </thead>
      <tbody>
        {records.map((r) => (
          <tr data-release={r.release.kfId}>
            <th scope="row">
              <a href={`/ui/releases/${r.release.kfId}`}>{r.release.name}</a>
              <div class="id">{r.release.kfId}</div>
            </th>
            <td>
              <StateBadge state={r.release.state} />
            </td>
            <td class="version">{r.release.version}</td>
            <td class="wide">{taskSummary(r.tasks)}</td>
            <td class="wide">
              <Time at={r.release.createdAt} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

/** Newer and older pages of the releases list, when it has more than one. */
const Pager: FC<{ total: number; offset: number; state?: string }> = ({ total, offset, state }) => {
  if (total <= LIST_PAGE_SIZE) return null;
  const link = (o: number) =>
    `/ui?${new URLSearchParams({ ...(state ? { state } : {}), offset: String(o) })}`;
  return (
    <nav class="pager" aria-label="Pages">
      {offset > 0 ? <a href={link(Math.max(0, offset - LIST_PAGE_SIZE))}>← Newer</a> : <span />}
      <span>
        {offset + 1}–{Math.min(total, offset + LIST_PAGE_SIZE)} of {total}
      </span>
      {offset + LIST_PAGE_SIZE < total ? <a href={link(offset + LIST_PAGE_SIZE)}>Older →</a> : <span />}
    </nav>
  );
};

export const ReleasesPage: FC<{
  records: ReleaseWithRelations[];
  total: number;
  state?: string;
  offset: number;
}> = ({ records, total, state, offset }) => (
  <>
    <div class="page-head">
      <h1>Releases</h1>
      <a class="button primary" href="/ui/releases/new">
        Start a release
      </a>
    </div>
    <StateFilter state={state} />
    <div id="releases">
      <p class="count">
        {total === 1 ? '1 release' : `${total} releases`}
        {state ? ` in state ${state}` : ''}
      </p>
      {records.length === 0 ? (
        <p class="empty">No releases{state ? ` in state ${state}` : ''} yet.</p>
      ) : (
        <ReleasesTable records={records} />
      )}
      <Pager total={total} offset={offset} state={state} />
    </div>
  </>
);

/** The release's facts, with who published or canceled it and when (refreshed live as a whole). */
const ReleaseFacts: FC<{ release: ReleaseWithRelations['release']; took: number; ongoing: boolean }> = ({
  release: r,
  took,
  ongoing,
}) => (
  <dl class="facts" id="release-facts">
    <div>
      <dt>Release</dt>
      <dd class="id">{r.kfId}</dd>
    </div>
    <div>
      <dt>Version</dt>
      <dd id="release-version">{r.version}</dd>
    </div>
    <div>
      <dt>Author</dt>
      <dd>{r.author || '—'}</dd>
    </div>
    <div>
      <dt>Created</dt>
      <dd>
        <Time at={r.createdAt} />
      </dd>
    </div>
    <div>
      <dt>{ongoing ? 'Running for' : 'Took'}</dt>
      <dd id="release-took">{formatDuration(took)}</dd>
    </div>
    {r.publishedAt ? (
      <div>
        <dt>Published</dt>
        <dd id="release-published">
          <Time at={r.publishedAt} />
          {r.publishedBy ? ` by ${r.publishedBy}` : ''}
        </dd>
      </div>
    ) : r.publishRequestedAt ? (
      <div>
        <dt>Publish requested</dt>
        <dd id="release-published">
          <Time at={r.publishRequestedAt} />
          {r.publishedBy ? ` by ${r.publishedBy}` : ''}
        </dd>
      </div>
    ) : null}
    {r.haltReason === 'cancel' ? (
      <div>
        <dt>Canceled</dt>
        <dd id="release-canceled">
          <Time at={r.haltedAt ?? r.stateChangedAt} />
          {r.haltedBy ? ` by ${r.haltedBy}` : ''}
        </dd>
      </div>
    ) : null}
    <div>
      <dt>Kind</dt>
      <dd>{r.isMajor ? 'major' : 'minor'}</dd>
    </div>
    {r.tags.length > 0 ? (
      <div>
        <dt>Tags</dt>
        <dd>
          {r.tags.map((t) => (
            <span class="tag">{t}</span>
          ))}
        </dd>
      </div>
    ) : null}
  </dl>
);

type Detail = ReleaseDetail['record'];

/** The release's name and state, and the actions its state allows. */
const ReleaseHead: FC<{ release: Detail['release'] }> = ({ release: r }) => (
  <>
    <nav class="crumbs" aria-label="Breadcrumb">
      <a href="/ui">Releases</a> <span aria-hidden="true">/</span> <span>{r.kfId}</span>
    </nav>
    <div class="page-head">
      <h1>
        {r.name} <StateBadge id="release-state" state={r.state} />
      </h1>
      <div class="actions" id="release-actions">
        <button type="button" class="primary" data-action="publish" hidden={r.state !== 'staged'}>
          Publish
        </button>
        <button type="button" class="danger" data-action="cancel" hidden={FINAL.has(r.state)}>
          Cancel release
        </button>
        <button type="button" data-action="run-again" hidden={!FINAL.has(r.state)}>
          Run again
        </button>
      </div>
    </div>
  </>
);

/** The release's tasks, with a row template the script fills for tasks it learns of live. */
const TasksCard: FC<{ tasks: TaskRecord[] }> = ({ tasks }) => (
  <section aria-labelledby="tasks-title" class="card">
    <h2 id="tasks-title">Tasks</h2>
    <p id="no-tasks" class="empty" hidden={tasks.length > 0}>
      No tasks: no task service was enabled when this release started.
    </p>
    <div class="table-wrap" hidden={tasks.length === 0} id="tasks-wrap">
      <table class="tasks" id="tasks">
        <caption class="visually-hidden">Tasks of this release</caption>
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">State</th>
            <th scope="col">Progress</th>
            <th scope="col" class="wide">
              Task
            </th>
          </tr>
        </thead>
        <tbody id="task-rows">
          {tasks.map((t) => (
            <TaskRow task={t} />
          ))}
        </tbody>
      </table>
    </div>
    <template id="task-row-template">
      <TaskRow />
    </template>
  </section>
);

/** The release's events, newest first. */
const TimelineCard: FC<{ events: ReleaseDetail['events'] }> = ({ events }) => (
  <section aria-labelledby="timeline-title" class="card">
    <h2 id="timeline-title">Timeline</h2>
    <ol id="timeline" class="timeline" aria-label="Events, newest first">
      {events.length === 0 ? <li class="muted">No events yet.</li> : null}
      {events.map((e) => (
        <li class={`ev ev-${e.eventType}`} data-event={e.kfId}>
          <Time at={e.createdAt} />
          <span class="ev-type">{e.eventType}</span>
          <span class="ev-msg">
            {e.serviceName ? <span class="ev-service">{e.serviceName}</span> : null}
            {e.serviceName ? ' ' : null}
            {e.message}
          </span>
        </li>
      ))}
    </ol>
  </section>
);

/** The release's studies, by id and name. */
const StudiesCard: FC<{ studies: string[]; studyNames: ReleaseDetail['studyNames'] }> = ({
  studies,
  studyNames,
}) => (
  <section aria-labelledby="studies-title" class="card">
    <h2 id="studies-title">Studies</h2>
    <ul class="studies">
      {studies.map((s) => (
        <li>
          <span class="id">{s}</span> {studyNames.get(s) ?? ''}
        </li>
      ))}
    </ul>
  </section>
);

/** The release's notes and the form that adds one for one of its studies. */
const NotesCard: FC<{ record: Detail; studyNames: ReleaseDetail['studyNames'] }> = ({
  record,
  studyNames,
}) => (
  <section aria-labelledby="notes-title" class="card">
    <h2 id="notes-title">Release notes</h2>
    <ul id="notes" class="notes">
      {record.notes.length === 0 ? <li class="muted">No notes yet.</li> : null}
      {record.notes.map((n) => (
        <li data-note={n.kfId}>
          <div class="note-meta">
            <span class="id">{n.studyId}</span> · {n.author || 'unknown'} · <Time at={n.createdAt} />
          </div>
          <p>{n.description}</p>
        </li>
      ))}
    </ul>
    <form id="note-form" class="stacked">
      <label for="note-study">Study</label>
      <select id="note-study" name="study" required>
        {record.studies.map((s) => (
          <option value={s}>
            {s}
            {studyNames.get(s) ? ` — ${studyNames.get(s)}` : ''}
          </option>
        ))}
      </select>
      <label for="note-text">Note</label>
      <textarea id="note-text" name="description" rows={3} required maxlength={20000} />
      <div>
        <button type="submit">Add note</button>
      </div>
    </form>
  </section>
);

export const ReleasePage: FC<{ detail: ReleaseDetail; now?: number }> = ({ detail, now = Date.now() }) => {
  const { record, events, studyNames } = detail;
  const r = record.release;
  const axis = releaseAxis(r, now);
  return (
    <>
      <ReleaseHead release={r} />
      <HaltArea release={r} />
      <ReleaseFacts release={r} took={axis.end - axis.start} ongoing={axis.ongoing} />
      {r.description ? <p class="description">{r.description}</p> : null}
      <TasksCard tasks={record.tasks} />
      <PhasesCard release={r} tasks={record.tasks} axis={axis} />
      <div class="columns">
        <TimelineCard events={events} />
        <div class="stack">
          <StudiesCard studies={record.studies} studyNames={studyNames} />
          <NotesCard record={record} studyNames={studyNames} />
        </div>
      </div>
    </>
  );
};

export const ServicesPage: FC<{
  services: ServiceRow[];
  lastCheck: (s: ServiceRow) => Date | undefined;
  threshold: number;
}> = ({ services, lastCheck, threshold }) => (
  <>
    <div class="page-head">
      <h1>Task services</h1>
    </div>
    <p class="hint">
      Health is checked with <code>GET {'{url}'}/status</code>; a service is <em>down</em> after more than{' '}
      {threshold} failed checks in a row. Disabled services get no tasks in new releases.
    </p>
    <div id="services">
      {services.length === 0 ? (
        <p class="empty">No task services registered yet: add one below.</p>
      ) : (
        <div class="table-wrap">
          <table class="services">
            <caption class="visually-hidden">Task services</caption>
            <thead>
              <tr>
                <th scope="col">Service</th>
                <th scope="col">Health</th>
                <th scope="col" class="wide">
                  Failed checks
                </th>
                <th scope="col" class="wide">
                  Last check
                </th>
                <th scope="col">Enabled</th>
              </tr>
            </thead>
            <tbody>
              {services.map((s) => (
                <tr data-service={s.kfId} id={s.kfId}>
                  <th scope="row">
                    <div class="service-name">{s.name}</div>
                    <div class="id">{s.kfId}</div>
                    <div class="url">{s.url}</div>
                    <ServiceSettings service={s} />
                  </th>
                  <td>
                    <span class={`badge health-${s.healthStatus}`}>{s.healthStatus}</span>
                  </td>
                  <td class="wide">{s.lastOkStatus}</td>
                  <td class="wide">
                    <Time
                      at={lastCheck(s)}
                      empty={s.enabled ? 'at registration' : 'not checked (disabled)'}
                    />
                  </td>
                  <td>
                    <label class="switch">
                      <input
                        type="checkbox"
                        // biome-ignore lint/a11y/useAriaPropsForRole: a native checkbox carries its checked state (ARIA in HTML: no aria-checked on it)
                        role="switch"
                        data-action="toggle-service"
                        data-id={s.kfId}
                        data-name={s.name}
                        checked={s.enabled}
                        aria-label={`${s.name} enabled`}
                      />
                      <span class="switch-text" aria-hidden="true">
                        {s.enabled ? 'on' : 'off'}
                      </span>
                    </label>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
    <ServiceForm />
  </>
);

/** The optional settings of a service, when any is set. */
const ServiceSettings: FC<{ service: ServiceRow }> = ({ service: s }) => {
  const deadlines = [
    ['request', s.requestTimeoutMs],
    ['start', s.startTimeoutMs],
    ['publish', s.publishTimeoutMs],
  ] as const;
  const parts = [
    ...deadlines
      .filter(([, ms]) => ms !== null)
      .map(([what, ms]) => `${what} deadline ${formatDuration(ms!)}`),
    ...(s.tokenSubject ? [`token subject ${s.tokenSubject}`] : []),
    ...(s.tokenAudience ? [`token audience ${s.tokenAudience}`] : []),
  ];
  return parts.length ? <div class="settings muted">{parts.join(' · ')}</div> : null;
};

/** A labelled input, its hint, and the slot where the API's message about the field is shown. */
const Field: FC<{
  id: string;
  name: string;
  label: string;
  hint?: Child;
  multiline?: boolean;
  form?: string;
  [attribute: string]: unknown;
}> = ({ id, name, label, hint, multiline, ...attributes }) => {
  const described = [hint ? `${id}-hint` : '', `${id}-error`].filter(Boolean).join(' ');
  return (
    <>
      <label for={id}>{label}</label>
      {multiline ? (
        <textarea id={id} name={name} rows={3} aria-describedby={described} {...attributes} />
      ) : (
        <input id={id} name={name} aria-describedby={described} {...attributes} />
      )}
      {hint ? (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      <p class="field-error" id={`${id}-error`} data-error-for={name} />
    </>
  );
};

const DEADLINE_LIMITS = { type: 'number', min: 100, max: 86_400_000, step: 1, inputmode: 'numeric' };

/** Registers a task service (POST /task-services); the API checks GET {url}/status live. */
const ServiceForm: FC = () => (
  <section aria-labelledby="add-service-title" class="card narrow">
    <h2 id="add-service-title">Add a task service</h2>
    <form id="service-form" class="stacked" novalidate>
      <Field id="svc-name" name="name" label="Name" required maxlength={100} autocomplete="off" />
      <Field
        id="svc-url"
        name="url"
        label="URL"
        type="url"
        inputmode="url"
        required
        maxlength={500}
        placeholder="https://search.example.org/task-service"
        hint={
          <>
            Base URL: the coordinator calls <code>{'{url}'}/status</code> and <code>{'{url}'}/tasks</code>. It
            checks <code>GET {'{url}'}/status</code> now, before registering.
          </>
        }
      />
      <Field id="svc-description" name="description" label="Description" maxlength={500} multiline />
      <label class="check">
        <input type="checkbox" name="enabled" checked /> Enabled (gets a task in every new release)
      </label>
      <p class="field-error" id="svc-enabled-error" data-error-for="enabled" />
      <details id="svc-advanced">
        <summary>Advanced: deadlines and tokens</summary>
        <div class="stacked">
          <Field
            id="svc-request-timeout"
            name="request_timeout_ms"
            label="Request deadline (ms)"
            hint="initialize, get_status, cancel and GET /status. Empty: REQUEST_TIMEOUT_MS."
            {...DEADLINE_LIMITS}
          />
          <Field
            id="svc-start-timeout"
            name="start_timeout_ms"
            label="Start deadline (ms)"
            hint="Empty: START_TIMEOUT_MS."
            {...DEADLINE_LIMITS}
          />
          <Field
            id="svc-publish-timeout"
            name="publish_timeout_ms"
            label="Publish deadline (ms)"
            hint="Empty: PUBLISH_TIMEOUT_MS."
            {...DEADLINE_LIMITS}
          />
          <Field
            id="svc-token-subject"
            name="token_subject"
            label="Token subject"
            maxlength={500}
            autocomplete="off"
            hint="Only service tokens with this sub may send callbacks for its tasks. Empty: any service token."
          />
          <Field
            id="svc-token-audience"
            name="token_audience"
            label="Token audience"
            maxlength={500}
            autocomplete="off"
            hint="aud of the tokens the coordinator sends it. Empty: its URL (or OAUTH_AUDIENCE)."
          />
        </div>
      </details>
      <div>
        <button type="submit" class="primary" id="service-submit">
          Check and register
        </button>
      </div>
      <p id="service-result" class="form-result" role="status" aria-live="polite" />
    </form>
  </section>
);

export const NewReleasePage: FC<{ studies: Array<{ kfId: string; name: string }>; key: string }> = ({
  studies,
  key,
}) => (
  <>
    <div class="page-head">
      <h1>Start a release</h1>
    </div>
    {/* the study fields sit inside the release form but belong to this one (form="study-form") */}
    <form id="study-form" data-fields="#add-study" novalidate />
    <form id="release-form" class="stacked narrow" novalidate>
      <input type="hidden" name="idempotency_key" value={key} />
      <Field id="rel-name" name="name" label="Name" required maxlength={256} />
      <Field id="rel-description" name="description" label="Description" multiline maxlength={5000} />

      <fieldset aria-describedby="err-studies">
        <legend>Studies</legend>
        <p class="empty" id="no-studies" hidden={studies.length > 0}>
          No studies yet: add one below, or sync them from the data service (<code>POST /studies/sync</code>).
        </p>
        <div class="checklist" id="study-list">
          {studies.map((s) => (
            <StudyCheck kfId={s.kfId} name={s.name} />
          ))}
        </div>
        <template id="study-check-template">
          <StudyCheck kfId="" name="" />
        </template>
        <p class="field-error" id="err-studies" data-error-for="studies" />
        <details class="add-study" id="add-study" open={studies.length === 0}>
          <summary>Study missing? Add it</summary>
          <div class="stacked">
            <Field
              id="study-kf-id"
              name="kf_id"
              label="Study id"
              form="study-form"
              required
              placeholder="SD_ABCDEF12"
              autocomplete="off"
              maxlength={11}
            />
            <Field id="study-name" name="name" label="Study name" form="study-form" maxlength={500} />
            <div>
              <button type="submit" form="study-form" id="study-submit">
                Add study
              </button>
            </div>
            <p id="study-result" class="form-result" role="status" aria-live="polite" />
          </div>
        </details>
      </fieldset>

      <Field id="rel-tags" name="tags" label="Tags" hint="Separated by commas." />
      <Field id="rel-author" name="author" label="Author" maxlength={100} hint="Empty: your user name." />

      <label class="check">
        <input type="checkbox" name="is_major" /> Major release (publishing raises the major version)
      </label>

      <div>
        <button type="submit" class="primary" id="release-submit">
          Start release
        </button>
      </div>
    </form>
  </>
);

const StudyCheck: FC<{ kfId: string; name: string }> = ({ kfId, name }) => (
  <label class="check">
    <input type="checkbox" name="studies" value={kfId} /> <span class="id">{kfId}</span>{' '}
    <span class="study-name">{name}</span>
  </label>
);

export const Message: FC<{ title: string; children?: Child }> = ({ title, children }) => (
  <>
    <h1>{title}</h1>
    <p>{children}</p>
  </>
);

export const NeedsToken: FC = () => (
  <div id="needs-token">
    <h1>Sign in to read</h1>
    <p>
      This coordinator does not allow anonymous reads (<code>PUBLIC_READS=false</code>). Sign in with a bearer
      token to see this page.
    </p>
  </div>
);
