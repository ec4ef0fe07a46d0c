import { describe, expect, test } from 'bun:test';
import { parse } from 'graphql';
import * as ui from '../../../test/support/ui-operations';
import { operationCost } from './limits';
import { schema } from './routes';

const cost = (query: string, variables: Record<string, unknown> = {}) =>
  operationCost(schema, parse(query), undefined, variables);

const LEAF = 'kfId tasks(first: 2) { edges { node { kfId } } }';

/** fragments that each spread the next one twice */
function fanOut(levels: number) {
  const fragments = ['query($n: Int) { allReleases(first: $n) { edges { node { ...F0 } } } }'];
  for (let i = 0; i < levels; i++)
    fragments.push(`fragment F${i} on ReleaseNode { ...F${i + 1} ...F${i + 1} }`);
  fragments.push(`fragment F${levels} on ReleaseNode { ${LEAF} }`);
  return fragments.join('\n');
}

/** the same selection written out in full */
const writtenOut = (levels: number) =>
  `query($n: Int) { allReleases(first: $n) { edges { node { ${Array(2 ** levels)
    .fill(LEAF)
    .join(' ')} } } } }`;

describe('operationCost', () => {
  test('a fragment spread counts as its selection written out, however often it is spread', () => {
    expect(cost(fanOut(4), { n: 7 })).toBe(cost(writtenOut(4), { n: 7 }));
    // 1 + 7 rows × (edges + node + 16 × (kfId + tasks(1 + 2 × (edges + node + kfId))))
    expect(cost(fanOut(4), { n: 7 })).toBe(1 + 7 * (2 + 16 * (1 + 1 + 2 * 3)));
  });

  test('each fragment is measured once: 200 levels (2^200 spreads) are costed exactly and at once', () => {
    const started = performance.now();
    const total = cost(fanOut(200), { n: 1 });
    console.log(
      `operationCost of a 200-level fragment fan-out: ${(performance.now() - started).toFixed(2)} ms`,
    );
    expect(total).toBe(1 + (2 + 2 ** 200 * 8));
  });

  test('a fragment cycle (a validation error) counts nothing instead of looping', () => {
    expect(
      cost('{ status { ...A } } fragment A on StatusType { name ...B } fragment B on StatusType { ...A }'),
    ).toBe(2);
  });

  test('the UI’s operations fit the budgets: with a token all of them, anonymous with a page size', () => {
    for (const [name, query] of Object.entries(ui)) {
      if (typeof query !== 'string') continue;
      const withTypename = ui.withTypename(query);
      expect({ name, fits: cost(withTypename) <= 200_000 }).toEqual({ name, fits: true });
      expect({ name, fits: cost(withTypename, { first: 10 }) <= 50_000 }).toEqual({ name, fits: true });
    }
  });
});
