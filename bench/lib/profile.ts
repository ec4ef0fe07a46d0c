import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './infra';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** Top self-time functions and top files of a .cpuprofile (Chrome format, as `bun --cpu-prof` writes). */
export function summarizeProfile(dir: string, top = 20) {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return undefined;
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: ProfileNode[];
    samples?: number[];
    startTime: number;
    endTime: number;
  };
  const hits = new Map<number, number>();
  if (prof.samples?.length) for (const s of prof.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  else for (const n of prof.nodes) hits.set(n.id, n.hitCount ?? 0);
  const total = [...hits.values()].reduce((a, b) => a + b, 0) || 1;
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  const short = (url: string) => {
    if (!url) return '(native)';
    const r = url.startsWith('/') ? relative(ROOT, url) : url;
    return r.replace(/^node_modules\//, 'nm/');
  };
  for (const n of prof.nodes) {
    const h = hits.get(n.id) ?? 0;
    if (!h) continue;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFn.set(key, (byFn.get(key) ?? 0) + h);
    const pkg = short(f.url).replace(/^(nm\/(@[^/]+\/)?[^/]+).*/, '$1');
    byFile.set(pkg, (byFile.get(pkg) ?? 0) + h);
  }
  const pct = (m: Map<string, number>, k: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, h]) => ({ name, selfPct: Math.round((h / total) * 1000) / 10 }));
  return {
    file: join(dir, file),
    samples: total,
    durationS: Math.round((prof.endTime - prof.startTime) / 1e4) / 100,
    topFunctions: pct(byFn, top),
    topFiles: pct(byFile, 12),
  };
}
