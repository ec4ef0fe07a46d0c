import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { type Subprocess, spawn } from 'bun';
import { deleteStreams } from '../src/infra/bus/streams';
import { busNames } from '../src/infra/bus/subjects';
import { createTestDatabase } from './support/database';
import { freePort } from './support/processes';
import { testPrefix } from './support/run';
import { NATS_URL } from './support/system';
import { until } from './support/until';

/*
 * The README's quick start, as written: its first command's demo (`npm run demo`) is started, and
 * every line of its `rc` example block is run in one bash session against it, so the commands a
 * newcomer copies stay true. Only the ports change (tests run side by side), and the demo gets a
 * database and a NATS prefix of its own.
 */

const ROOT = resolve(import.meta.dir, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced ```bash blocks of the README, in order. */
function bashBlocks(text: string): string[] {
  return [...text.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** A block's commands, one per line, without comments. */
function commands(block: string): string[] {
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line && !line.startsWith('#'));
}

let demo: Subprocess<'ignore', 'pipe', 'pipe'>;
let port: number;
let mockPort: number;
let dataDir: string;
let prefix: string;
let dropDatabase: () => Promise<void>;
let output = '';

beforeAll(async () => {
  port = await freePort();
  mockPort = await freePort();
  dataDir = mkdtempSync(join(tmpdir(), 'rc-readme-'));
  prefix = testPrefix('m');
  const db = await createTestDatabase('readme');
  dropDatabase = db.drop;
  // `npm run demo` is this script; run directly, so a signal reaches the demo and not only npm
  const script = (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { demo: string } }
  ).scripts.demo;
  demo = spawn([process.execPath, ...script.replace(/^bun\s+/, '').split(/\s+/)], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      DEMO_MOCK_PORT: String(mockPort),
      DATABASE_URL: db.url,
      NATS_URL,
      NATS_PREFIX: prefix,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  for (const stream of [demo.stdout, demo.stderr]) void collect(stream);
}, 30_000);

afterAll(async () => {
  demo?.kill('SIGINT');
  await Promise.race([demo?.exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (demo && demo.exitCode === null) demo.kill('SIGKILL');
  const nc = await connect({ servers: NATS_URL });
  await deleteStreams(nc, busNames(prefix));
  await nc.close();
  await dropDatabase?.();
  rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

async function collect(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    output += decoder.decode(value, { stream: true });
  }
}

describe('README quick start', () => {
  test('the first block names the two commands: the demo and the test suite', () => {
    const first = commands(bashBlocks(README)[0]!);
    expect(first).toEqual(['npm ci && npm run demo', 'npm test']);
  });

  test('npm run demo drives its release to published and prints how to go on', async () => {
    await until(() => /\bpublished\b/.test(output) && output.includes('token --dev'), {
      timeoutMs: 60_000,
      message: 'the demo to publish its release and print how to go on',
    }).catch((err) => {
      throw new Error(`${(err as Error).message}; the demo printed:\n${output.slice(-1500)}`);
    });
  }, 70_000);

  test('every line of the rc example runs as written and succeeds', async () => {
    const block = bashBlocks(README).find((b) => b.includes('rc token --dev'))!;
    const lines = commands(block).map((line) =>
      line
        .replaceAll('http://localhost:3000', `http://localhost:${port}`)
        .replaceAll('127.0.0.1:3001', `127.0.0.1:${mockPort}`),
    );
    expect(lines.length).toBeGreaterThanOrEqual(8);
    // one shell, so `export` and `release=$(...)` carry over; stop at the first line that fails
    const script = lines
      .map((line) => `${line} || { echo "FAILED($?): ${line.replace(/["$`\\]/g, '\\$&')}" >&2; exit 1; }`)
      .join('\n');
    const proc = spawn(['bash', '-c', `set -o pipefail\n${script}`], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect({ code, stderr: stderr.slice(-2000) }).toEqual({ code: 0, stderr: expect.any(String) });
    expect(stdout).toContain('is published');
  }, 120_000);
});
