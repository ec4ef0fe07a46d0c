import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import postgres from 'postgres';
import { openApiDocument } from '../src/gateway/app';
import type { Lookup } from '../src/infra/task-service/address-policy';
import { SOAK, soakOr } from './support/faults';
import { createStudy, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// Property-based fuzzing of every REST route (taken from the gateway's own OpenAPI document),
// in-process through app.fetch: random JSON, wrong types, huge strings, deep nesting, invalid
// UTF-8, wrong content types, oversized bodies, bad ids, bad paging values, odd methods.
// Invariants: never a 5xx; an error is a JSON object with a message (`detail`, or field → list
// of messages); a rejected request changes no row of any table (checked after every one).
// Nothing leaves loopback: names never resolve and the coordinator's fetch reaches 127.0.0.1 only.

const RUNS = soakOr(10_000, 100_000);
const MAX_BODY_BYTES = 4_096;
let t: TestSystem;
let sql: postgres.Sql;
let stub: ReturnType<typeof Bun.serve>;
const ids: Record<string, string> = {};
let study: string;

const noDns: Lookup = async (host) => {
  throw new Error(`ENOTFOUND ${host} (the fuzz test resolves nothing)`);
};
const loopbackOnly = (async (input: RequestInfo | URL, init?: RequestInit) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.hostname !== '127.0.0.1') throw new Error(`refused to leave loopback: ${url.host}`);
  return fetch(input, init);
}) as typeof fetch;

beforeAll(async () => {
  // a task service that finishes each action in its answer (nothing is ever polled), and a data
  // service that lists the one study
  stub = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (req) => {
      const path = new URL(req.url).pathname;
      if (path.endsWith('/status')) return Response.json({ name: 'stub', message: 'ready', version: '1' });
      if (path.startsWith('/data/studies'))
        return Response.json({
          results: [{ kf_id: study, name: `study ${study}`, visible: true }],
          _links: {},
        });
      const body = (await req.json().catch(() => ({}))) as {
        action?: string;
        task_id?: string;
        release_id?: string;
      };
      const done: Record<string, string> = {
        initialize: 'pending',
        publish: 'published',
        cancel: 'canceled',
      };
      return Response.json({
        kf_id: body.task_id,
        release_id: body.release_id,
        state: done[body.action ?? ''] ?? 'staged',
        progress: 100,
      });
    },
  });
  t = await startTestSystem(
    'abuse_fuzz',
    {
      MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      DATASERVICE_URL: `http://127.0.0.1:${stub.port}/data`,
      // no background polls or health checks: between requests only what a request caused may change rows
      POLL_INTERVAL_MS: '3600000',
      HEALTH_INTERVAL_MS: '3600000',
    },
    { lookup: noDns, fetch: loopbackOnly },
  );
  study = await createStudy(t.api);
  const service = await t.api('POST', '/task-services', {
    name: 'stub',
    url: `http://127.0.0.1:${stub.port}/svc`,
  });
  expect(service.status).toBe(201);
  ids.TS = service.body.kf_id;
  const release = await t.api('POST', '/releases', { name: 'fuzzed', studies: [study] });
  expect(release.status).toBe(201);
  ids.RE = release.body.kf_id;
  ids.TA = release.body.tasks[0].kf_id;
  await waitForState(t.api, ids.RE!, 'staged');
  // no health checks or polls from here on: the database only changes when a request changes it
  expect((await t.api('PATCH', `/task-services/${ids.TS}`, { enabled: false })).status).toBe(200);
  const note = await t.api('POST', '/release-notes', { description: 'n', release: ids.RE, study });
  expect(note.status).toBe(201);
  ids.RN = note.body.kf_id;
  ids.EV = (await t.api('GET', '/events?limit=1')).body.results[0].kf_id;
  ids.SD = study;
  sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
}, 60_000);

afterAll(async () => {
  await sql?.end();
  await t?.stop();
  stub?.stop(true);
});

/** one md5 per table, in one round trip */
async function snapshot(): Promise<Record<string, string>> {
  const tables = await sql<{ name: string }[]>`
    select table_name as name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`;
  const parts = tables.map(
    (x) =>
      `(select md5(coalesce(string_agg(r::text, '|' order by r::text), '')) from "${x.name}" r) as "${x.name}"`,
  );
  const [row] = await sql.unsafe<Record<string, string>[]>(`select ${parts.join(', ')}`);
  return row!;
}

/**
 * After an accepted write, the coordinator may still be applying it: wait until it has nothing
 * left to do (no answer awaited, no poll scheduled, every outbox batch published and deleted) and
 * the tables read the same twice.
 */
async function settled(): Promise<Record<string, string>> {
  let last: Record<string, string> | undefined;
  return until(
    async () => {
      const [busy] = await sql<{ n: number }[]>`
        select (select count(*) from outbox_batches)
          + (select count(*) from tasks where awaiting is not null or next_poll_at is not null) as n`;
      if (Number(busy!.n) > 0) return undefined;
      const now = await snapshot();
      const same = JSON.stringify(now) === JSON.stringify(last);
      last = now;
      return same ? now : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 20, message: 'the coordinator to finish what an accepted write began' },
  );
}

// --- generators -----------------------------------------------------------------------------

const FIELDS = [
  'name',
  'description',
  'studies',
  'tags',
  'author',
  'is_major',
  'halt',
  'published_by',
  'publish_requested_at',
  'published_at',
  'states_at',
  'state',
  'progress',
  'url',
  'enabled',
  'kf_id',
  'release',
  'study',
  'visible',
  'version',
  'task_service',
];
const huge = fc.integer({ min: 257, max: 6_000 }).map((n) => 'x'.repeat(n));
const oddString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  huge,
  fc.constantFrom('', ' ', '\u0000', '\uFFFF', '\uD800', '😀'.repeat(300), 'SD_00000000', 'RE_AAAAAAAA'),
  fc.constantFrom(...Object.values({ a: 'RE', b: 'TA', c: 'TS' })).map((p) => `${p}_${'Z'.repeat(8)}`),
);
/** numbers at the edges of what Postgres stores (`real` underflows below ~1e-45, ends at ~3.4e38) */
const extremeNumber = fc.constantFrom(
  1e-320,
  5e-324,
  -1e-320,
  1e39,
  -1e39,
  3.5e38,
  -0,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53,
);
/** what a database refuses in text, and numbers written as strings that are not numbers */
const unstorable = fc.oneof(
  fc.string().map((x) => `${x}\u0000${x}`),
  fc.string().map((x) => `${x}\uDC00`),
  fc.integer({ min: 20_001, max: 30_000 }).map((n) => 'y'.repeat(n)),
  fc.constantFrom('NaN', '-NaN', 'Infinity', '-0', '1e-320', '1e39', '0x10', '50%\u0000'),
);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  oddString,
  unstorable,
  extremeNumber,
  fc.array(unstorable, { maxLength: 3 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(oddString, { maxLength: 60 }),
  fc.array(fc.integer(), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string(), { maxKeys: 3 }),
  fc.constant('http://127.0.0.1:1/'),
  fc.constant('http://169.254.169.254/latest'),
  fc.constant('http://example.com/'),
);
const wrongTypes = fc.dictionary(fc.constantFrom(...FIELDS), anyValue, { minKeys: 1, maxKeys: 6 });
const deep = fc
  .tuple(fc.integer({ min: 50, max: 20_000 }), fc.boolean())
  .map(([n, arr]) => (arr ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`));
type Body = { text?: string; bytes?: Uint8Array };
const body: fc.Arbitrary<Body | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue().map((v) => ({ text: JSON.stringify(v) })),
  wrongTypes.map((v) => ({ text: JSON.stringify(v) })),
  deep.map((text) => ({ text })),
  fc.integer({ min: MAX_BODY_BYTES + 1, max: MAX_BODY_BYTES * 4 }).map((n) => ({
    text: JSON.stringify({ name: 'n'.repeat(n) }),
  })),
  fc
    .constantFrom('{', '{"name":', '[1,2', 'null', 'true', '"x"', '{"a":1}{"b":2}', 'NaN', '\u0000')
    .map((text) => ({ text })),
  // invalid UTF-8 inside a JSON string, and raw junk bytes
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((junk) => ({
    bytes: new Uint8Array([...new TextEncoder().encode('{"name":"'), 0xc3, 0x28, 0xff, ...junk, 0x22, 0x7d]),
  })),
);
const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      'application/merge-patch+json',
      'application/xml',
      '',
      'Application/JSON',
    ),
  },
);
const badId = fc.oneof(
  fc.constantFrom(
    'RE_00000000',
    'TA_00000000',
    'TS_00000000',
    'x',
    '0',
    '-1',
    '%00',
    '%C3%28',
    '%FF%FE',
    '..%2F..',
    "'; drop table releases; --",
  ),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.integer({ min: 300, max: 3_000 }).map((n) => 'A'.repeat(n)),
);
const pagingValue = fc.oneof(
  fc.constantFrom(
    '-1',
    '0',
    '1',
    '100',
    '101',
    '1e309',
    'NaN',
    'Infinity',
    '99999999999999999999',
    '',
    'abc',
    '%FF',
    '1.5',
    ' 1',
    '0x10',
  ),
  fc.integer().map(String),
);
const query = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'limit',
        'offset',
        'state',
        'release',
        'task',
        'task_service',
        'enabled',
        'event_type',
        'study',
        'since',
        'from',
        'x',
      ),
      pagingValue,
    ),
    { maxLength: 4 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));
const auth = fc.oneof(
  { weight: 8, arbitrary: fc.constant('admin') },
  { weight: 2, arbitrary: fc.constantFrom('none', 'Bearer x.y.z', 'Basic YTpi', 'Bearer ', 'Bearer null') },
);

// --- the property -----------------------------------------------------------------------------

describe('fuzzing every REST route', () => {
  test(`${RUNS} random requests: no 5xx, JSON errors with a message, no row changed by a rejected one`, async () => {
    const doc = openApiDocument(t.system.app!, t.system.config.PUBLIC_URL) as unknown as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(doc.paths)
      .filter(([path]) => !['/events/stream', '/metrics', '/openapi.json'].includes(path))
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => ({ method: method.toUpperCase(), path })));
    expect(routes.length).toBeGreaterThanOrEqual(25);
    const kinds = {
      RE: 'releases',
      TA: 'tasks',
      TS: 'task-services',
      EV: 'events',
      RN: 'release-notes',
      SD: 'studies',
    };
    const idFor = (path: string) => {
      const kind = Object.entries(kinds).find(([, c]) => path.startsWith(`/${c}/`))?.[0];
      return kind ? ids[kind]! : 'x';
    };
    // a valid body of each write, so that one bad field (below) is what the gateway has to catch
    const templates: Record<string, Record<string, unknown>> = {
      'POST /releases': { name: 'fuzzed release', studies: [study] },
      'PATCH /releases/{id}': { name: 'renamed' },
      'POST /task-services': {
        name: 'fuzzed service',
        url: `http://127.0.0.1:${stub.port}/svc`,
        enabled: false,
      },
      'PATCH /task-services/{id}': { description: 'changed' },
      'POST /studies': { kf_id: 'SD_FUZZ0000', name: 'fuzzed study' },
      'POST /release-notes': { description: 'fuzzed note', release: ids.RE, study },
      'PATCH /release-notes/{id}': { description: 'changed' },
      'PATCH /tasks/{id}': { progress: 50 },
    };
    const oneBadField = fc.record({ field: fc.nat(), value: fc.oneof(unstorable, extremeNumber, anyValue) });
    const request = fc.record({
      route: fc.constantFrom(...routes),
      // mostly the route's own method, sometimes another one
      method: fc.oneof(
        { weight: 5, arbitrary: fc.constant(null) },
        {
          weight: 1,
          arbitrary: fc.constantFrom('PUT', 'OPTIONS', 'DELETE', 'POST', 'PATCH', 'GET', 'TRACE'),
        },
      ),
      id: fc.option(badId, { freq: 2 }),
      query,
      body,
      contentType,
      auth,
      badField: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: oneBadField }),
    });
    let before = await snapshot();
    let tried = 0;
    // every broken invariant, once per route × kind (with the first example), so one defect does
    // not hide the others; the test fails at the end if any was found
    const violations = new Map<string, string>();
    const violation = (kind: string, routeKey: string, what: string) => {
      if (!violations.has(`${routeKey}: ${kind}`)) violations.set(`${routeKey}: ${kind}`, what);
    };
    const statuses: Record<number, number> = {};
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        tried++;
        const template = r.badField ? templates[`${r.route.method} ${r.route.path}`] : undefined;
        const method = template ? r.route.method : (r.method ?? r.route.method);
        const path = r.route.path.replace(
          '{id}',
          template ? idFor(r.route.path) : (r.id ?? idFor(r.route.path)),
        );
        const headers: Record<string, string> = {};
        let sent = r.body;
        if (template) {
          // the template's own fields (never `enabled`: a task service switched on would give the
          // releases made later tasks, whose progress outlasts `settled`)
          const fields = Object.keys(template).filter((f) => f !== 'enabled');
          const body = { ...template, [fields[r.badField!.field % fields.length]!]: r.badField!.value };
          sent = { text: JSON.stringify(body) };
          headers['content-type'] = 'application/json';
          headers.authorization = `Bearer ${t.adminToken}`;
        } else {
          if (r.contentType !== undefined) headers['content-type'] = r.contentType;
          if (r.auth === 'admin') headers.authorization = `Bearer ${t.adminToken}`;
          else if (r.auth !== 'none') headers.authorization = r.auth;
        }
        const withBody = sent !== undefined && method !== 'GET' && method !== 'OPTIONS' && method !== 'TRACE';
        const res = await t.system.app!.fetch(
          new Request(`${t.system.config.PUBLIC_URL}${path}${r.query ? `?${r.query}` : ''}`, {
            method,
            headers,
            body: withBody ? ((sent!.bytes as Uint8Array<ArrayBuffer> | undefined) ?? sent!.text) : undefined,
          }),
        );
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        const text = await res.text();
        const what = `${method} ${path}${r.query ? `?${r.query}` : ''} → ${res.status} ${text.slice(0, 200)}`;
        const routeKey = `${method} ${r.route.path}`;
        if (res.status >= 500) violation(`${res.status}`, routeKey, what);
        if (res.status >= 400) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            violation('error body is not JSON', routeKey, what);
          }
          const o = parsed as Record<string, unknown>;
          const hasMessage =
            (o !== null &&
              typeof o === 'object' &&
              !Array.isArray(o) &&
              // GraphQL's own error shape: { errors: [{ message }] }
              Array.isArray(o.errors) &&
              o.errors.length > 0 &&
              o.errors.every((e) => typeof (e as { message?: unknown })?.message === 'string')) ||
            typeof o.detail === 'string' ||
            (Object.keys(o).length > 0 &&
              Object.values(o).every(
                (v) => Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === 'string'),
              ));
          if (!hasMessage) violation('error body without a message', routeKey, what);
          const after = await snapshot();
          const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
          if (changed.length > 0) {
            violation(`rejected request changed ${changed.join(', ')}`, routeKey, what);
            before = after;
          }
        } else if (method !== 'GET' && method !== 'HEAD') {
          before = await settled();
          // "accepted" means it will be applied: the release it names exists once things settle
          if (res.status === 202 && r.route.path === '/releases') {
            const id = (JSON.parse(text) as { kf_id: string }).kf_id;
            const found = await t.api('GET', `/releases/${id}`);
            if (found.status !== 200) violation('202 then never applied', routeKey, what);
          }
        }
      }),
      { numRuns: RUNS, endOnFailure: true, verbose: SOAK ? 1 : 0 },
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `fuzz: ${tried} requests over ${routes.length} routes in ${seconds.toFixed(1)} s (${Math.round(tried / seconds)}/s); statuses ${JSON.stringify(statuses)}`,
    );
    for (const [key, example] of violations)
      console.log(`fuzz violation: ${key}\n    e.g. ${JSON.stringify(example)}`);
    // an accepted write the coordinator then fails to apply is one accepted and dropped
    const failures = t.system.coordinator!.stats.failures;
    console.log(`fuzz: ${failures} messages the coordinator could not apply`);
    expect(tried).toBeGreaterThanOrEqual(RUNS);
    expect([...violations.keys()]).toEqual([]);
    expect(failures).toBe(0);
  }, 240_000);
});
