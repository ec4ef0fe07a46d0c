import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startTestSystem, type TestSystem } from './support/system';
import { ALL_RELEASES, graphqlClient } from './support/ui-operations';

// Documents built to make the gateway's GraphQL limits do a lot of work: fragments that each
// spread the next one twice (2^levels repetitions from a document of a few KB), and the
// anonymous cost budget. The limits measure each fragment once, so such a document is refused
// at once and the gateway keeps answering others. Timings are measured and printed, never asserted.

let t: TestSystem;
let gql: ReturnType<typeof graphqlClient>;

beforeAll(async () => {
  t = await startTestSystem('abuse_graphql');
  gql = graphqlClient(t.url);
  // the first request compiles the schema's resolvers: keep that out of the timings
  expect((await postGraphql('{ status { name } }', null)).status).toBe(200);
});
afterAll(async () => {
  await t?.stop();
});

/** `levels` fragments, each spreading the next one twice; the last selects `leaf` on a release */
function fragmentFanOut(levels: number, leaf = 'kfId'): string {
  const lines = ['query FanOut { allReleases { edges { node { ...F0 } } } }'];
  for (let i = 0; i < levels; i++) lines.push(`fragment F${i} on ReleaseNode { ...F${i + 1} ...F${i + 1} }`);
  lines.push(`fragment F${levels} on ReleaseNode { ${leaf} }`);
  return lines.join('\n');
}

/** POST /graphql with the document as given (the UI client adds `__typename` everywhere) */
async function postGraphql(query: string, token: string | null) {
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: (await res.json()) as Awaited<ReturnType<typeof gql>>['body'] };
}

/** the GraphQL request and a GET /status sent while it is in flight, each timed */
async function withConcurrentStatus(query: string, token: string | null) {
  const started = performance.now();
  const graphql = postGraphql(query, token).then((res) => ({ res, ms: performance.now() - started }));
  const statusStarted = performance.now();
  const status = fetch(`${t.url}/status`).then((res) => ({ res, ms: performance.now() - statusStarted }));
  return { graphql: await graphql, status: await status };
}

describe('GraphQL limits take time linear in the document', () => {
  test('a 30-level fragment fan-out (2^30 repetitions) is refused by its cost while GET /status answers', async () => {
    const query = fragmentFanOut(30);
    const statusAlone: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      expect((await fetch(`${t.url}/status`)).status).toBe(200);
      statusAlone.push(performance.now() - started);
    }
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await withConcurrentStatus(query, i % 2 ? t.adminToken : null));
    const [anonymous, admin] = [runs[0]!, runs[1]!];
    const ms = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
    console.log(
      `fragment fan-out, 30 levels (${query.length} bytes), 5 runs: refused in ${ms(runs.map((r) => r.graphql.ms))} ms; concurrent GET /status ${ms(runs.map((r) => r.status.ms))} ms; GET /status alone ${ms(statusAlone)} ms`,
    );
    for (const { graphql, status } of runs) {
      expect(status.res.status).toBe(200);
      expect(graphql.res.status).toBe(200);
      expect(graphql.res.body.data).toBeUndefined();
      expect(graphql.res.body.errors![0]!.extensions!.code).toBe('QUERY_TOO_EXPENSIVE');
    }
    // 1 + 100 rows × (edges + node + 2^30 × kfId)
    expect(anonymous.graphql.res.body.errors![0]!.message).toBe(
      'The query is too expensive (estimated 107374182601, at most 50000 without a token): ask for fewer rows (first/last) or fewer nested lists.',
    );
    expect(admin.graphql.res.body.errors![0]!.message).toContain('at most 200000)');
  });

  test('a fan-out whose last fragment nests too deeply is refused by depth', async () => {
    const deepLeaf =
      'studies { edges { node { releases { edges { node { tasks { edges { node { kfId } } } } } } } } }';
    const query = fragmentFanOut(30, deepLeaf);
    const { graphql, status } = await withConcurrentStatus(query, t.adminToken);
    console.log(
      `deep fragment fan-out, 30 levels: refused in ${graphql.ms.toFixed(1)} ms; concurrent GET /status ${status.ms.toFixed(1)} ms`,
    );
    expect(status.res.status).toBe(200);
    expect(graphql.res.body.data).toBeUndefined();
    expect(graphql.res.body.errors![0]).toMatchObject({
      message: 'The query is nested too deeply (more than 10 levels).',
      extensions: { code: 'QUERY_TOO_DEEP' },
    });
  });

  test('a fan-out inside introspection is refused by graphql’s own introspection depth rule', async () => {
    const lines = ['{ __schema { types { ...F0 } } }'];
    for (let i = 0; i < 30; i++) lines.push(`fragment F${i} on __Type { ...F${i + 1} ...F${i + 1} }`);
    lines.push('fragment F30 on __Type { fields { type { fields { type { fields { name } } } } } }');
    const res = await postGraphql(lines.join('\n'), null);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors![0]!.message).toBe('Maximum introspection depth exceeded');
  });
});

describe('budgets', () => {
  test('anonymous callers have a lower cost budget: a full page of releases needs a token, a small page does not', async () => {
    const anonymous = await gql(ALL_RELEASES, {}, null);
    expect(anonymous.body.errors![0]!.extensions!.code).toBe('QUERY_TOO_EXPENSIVE');
    expect(anonymous.body.errors![0]!.message).toMatch(/at most 50000 without a token/);
    const smallPage = await gql(ALL_RELEASES, { first: 10 }, null);
    expect(smallPage.body.errors).toBeUndefined();
    const withToken = await gql(ALL_RELEASES, {}, t.adminToken);
    expect(withToken.body.errors).toBeUndefined();
    expect(withToken.body.data.allReleases.edges).toEqual([]);
  });

  test('more than 30 aliases are refused', async () => {
    const aliases = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `s${i}: status { name }`).join(' ')} }`;
    expect((await gql(aliases(30))).body.errors).toBeUndefined();
    const res = await gql(aliases(31));
    expect(res.body.errors![0]).toMatchObject({
      message: 'The query has more than 30 aliases.',
      extensions: { code: 'TOO_MANY_ALIASES' },
    });
  });
});
