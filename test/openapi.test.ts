import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { RELEASE_FIELDS, TASK_FIELDS } from './support/shapes';
import { startTestSystem, type TestSystem } from './support/system';

let t: TestSystem;
let doc: any;

beforeAll(async () => {
  t = await startTestSystem('openapi', { PUBLIC_URL: 'https://coordinator.test' });
  const res = await t.anonymous('GET', '/openapi.json');
  expect(res.status).toBe(200);
  doc = res.body;
});
afterAll(async () => {
  await t?.stop();
});

const WRITES = ['post', 'patch', 'delete', 'put'];

describe('GET /openapi.json', () => {
  test('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.servers).toEqual([{ url: 'https://coordinator.test' }]);
  });

  test('describes every route the gateway serves', () => {
    const served = new Set<string>();
    for (const r of t.system.app!.routes) {
      // the docs and the dashboard are HTML pages for people, not part of the API; nor is the
      // development token (`rc token --dev`), which answers 404 outside development mode
      if (
        r.method === 'ALL' ||
        r.path === '/openapi.json' ||
        r.path.startsWith('/docs') ||
        r.path.startsWith('/ui') ||
        r.path === '/dev/token'
      )
        continue;
      const path = (r.path.replace(/\/+$/, '') || '/').replace(/:([^/]+)/g, '{$1}');
      served.add(`${r.method.toLowerCase()} ${path}`);
    }
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(ops)) documented.add(`${method} ${path}`);
    }
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
    for (const spec of [
      'get /',
      'get /status',
      'get /.well-known/jwks.json',
      'get /releases',
      'post /releases',
      'get /releases/{id}',
      'patch /releases/{id}',
      'delete /releases/{id}',
      'post /releases/{id}/publish',
      'get /tasks',
      'get /tasks/{id}',
      'patch /tasks/{id}',
      'get /task-services',
      'post /task-services',
      'patch /task-services/{id}',
      'delete /task-services/{id}',
      'get /events',
      'get /events/{id}',
      'get /studies',
      'get /studies/{id}',
      'get /studies/{id}/releases',
      'post /studies/sync',
      'get /release-notes',
      'post /release-notes',
      'patch /release-notes/{id}',
      'delete /release-notes/{id}',
    ]) {
      expect(documented).toContain(spec);
    }
  });

  test('writes need the bearer scheme; every operation has a success answer with a schema', () => {
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method} ${path}`;
        if (WRITES.includes(method))
          expect({ where, security: op.security }).toEqual({ where, security: [{ bearer: [] }] });
        const success = Object.entries(op.responses as Record<string, any>).filter(([s]) =>
          s.startsWith('2'),
        );
        expect({ where, hasSuccess: success.length > 0 }).toEqual({ where, hasSuccess: true });
        for (const [status, answer] of success) {
          if (status === '204') continue;
          expect({ where, status, content: Object.keys(answer.content ?? {}).length > 0 }).toEqual({
            where,
            status,
            content: true,
          });
        }
      }
    }
  });

  test('resource schemas list the fields in the order of the API', () => {
    const fields = (name: string) => Object.keys(doc.components.schemas[name].properties);
    expect(fields('Release')).toEqual(RELEASE_FIELDS);
    expect(fields('Task')).toEqual(TASK_FIELDS);
    expect(fields('ReleasePage')).toEqual(['count', 'next', 'previous', 'results']);
    expect(doc.paths['/releases'].post.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/ReleaseCreate',
    });
    expect(doc.components.schemas.ReleaseCreate.required).toEqual(
      expect.arrayContaining(['name', 'studies']),
    );
  });
});

describe('GET /docs', () => {
  test('is a Swagger UI page whose assets the gateway serves itself (no CDN)', async () => {
    const res = await fetch(`${t.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('/openapi.json');
    expect(html).not.toMatch(/(src|href)="https?:/);
    for (const asset of ['/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css']) {
      expect(html).toContain(asset);
      const a = await fetch(t.url + asset);
      expect(a.status).toBe(200);
      expect((await a.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
    expect((await fetch(`${t.url}/docs/package.json`)).status).toBe(404);
    expect((await fetch(`${t.url}/docs/..%2Fpackage.json`)).status).toBe(404);
  });
});
