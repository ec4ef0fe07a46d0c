import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/*
 * The layers of src/ (docs/architecture.md, "Layers"): which folder may import which. Pure: reads
 * the source files only. Lint (biome.json's noRestrictedImports per folder) says the same at the
 * line that breaks a rule; this test also finds import cycles between folders.
 */

const SRC = resolve(import.meta.dir, '../src');

/** Files every layer may import: configuration, the deadlines derived from it, the version. */
const FOUNDATION = new Set(['config.ts', 'timing.ts', 'version.ts']);

/** What each layer may import besides itself and the foundation files. */
const MAY_IMPORT: Record<string, string[]> = {
  domain: [],
  infra: ['domain'],
  notifications: ['domain', 'infra'],
  coordinator: ['domain', 'infra', 'notifications'],
  worker: ['domain', 'infra'],
  gateway: ['domain', 'infra', 'notifications'],
  cli: ['domain'],
  // one factory per role (src/roles/), wired together by system.ts
  roles: ['domain', 'infra', 'notifications', 'coordinator', 'worker', 'gateway'],
  // main.ts, run-roles.ts, system.ts, startup.ts: the process
  top: ['domain', 'infra', 'notifications', 'coordinator', 'worker', 'gateway', 'roles'],
};

const files = [...new Bun.Glob('**/*.{ts,tsx}').scanSync({ cwd: SRC })].filter(
  (f) => !f.endsWith('.test.ts'),
);

/** The layer of a file under src/ (its first folder, or `top`). */
const layerOf = (file: string) => (file.includes('/') ? file.split('/')[0]! : 'top');

/** The relative imports of a file, resolved to paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return specs.map((s) => relative(SRC, resolve(SRC, dirname(file), s)));
}

const edges = files.flatMap((file) => importsOf(file).map((target) => ({ file, target })));

describe('layers (src/)', () => {
  test('each layer imports only the layers below it', () => {
    const broken = edges
      .filter(({ file, target }) => {
        const from = layerOf(file);
        const to = layerOf(target);
        if (from === to || FOUNDATION.has(`${target.replace(/\.tsx?$/, '')}.ts`)) return false;
        if (target === '../package.json') return false; // the version is read from the manifest
        if (target.startsWith('..')) return true; // outside src/
        return !(MAY_IMPORT[from] ?? []).includes(to);
      })
      .map(({ file, target }) => `${file} → ${target}`);
    expect(broken).toEqual([]);
  });

  test('no two folders import each other, directly or through others', () => {
    const folder = (f: string) => dirname(f);
    const graph = new Map<string, Set<string>>();
    for (const { file, target } of edges) {
      const a = folder(file);
      const b = folder(target);
      // the foundation files sit at the top and are imported by all; main.ts & co import all
      if (a === b || a === '.' || b === '.' || target.startsWith('..')) continue;
      if (!graph.has(a)) graph.set(a, new Set());
      graph.get(a)!.add(b);
    }
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const walk = (node: string, path: string[]) => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(node)), node].join(' → '));
        return;
      }
      state.set(node, 'visiting');
      for (const next of graph.get(node) ?? []) walk(next, [...path, node]);
      state.set(node, 'done');
    };
    for (const node of graph.keys()) walk(node, []);
    expect(cycles).toEqual([]);
  });
});

describe('coordinator store (src/coordinator/store/)', () => {
  test('only the store holds SQL: nothing else in src/coordinator imports drizzle-orm or writes sql`…`', () => {
    const outside = files.filter((f) => f.startsWith('coordinator/') && !f.startsWith('coordinator/store/'));
    expect(outside.length).toBeGreaterThan(0);
    const offending = outside.filter((f) => {
      const text = readFileSync(join(SRC, f), 'utf8');
      return text.includes('sql`') || /from\s+['"]drizzle-orm/.test(text);
    });
    expect(offending).toEqual([]);
  });
});
