import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import type { MockHandle } from '../mock-task-service/src/index';
import { ApiClient } from '../src/cli/http';
import { Output } from '../src/cli/output';
import type { Release } from '../src/cli/releases';
import { followSse, type SseEvent, SseParser } from '../src/cli/sse';
import { WatchView } from '../src/cli/watch';
import { createRelease, createStudy, registerMockServices, waitForState } from './support/fixtures';
import { collectOutput } from './support/processes';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// `rc releases watch` and `rc events --follow` as child processes against a live coordinator.
const MAIN = join(import.meta.dir, '..', 'src', 'cli', 'main.ts');

let t: TestSystem;
let mock: MockHandle;
let study: string;

/** A running `rc` whose stdout/stderr are collected as they come, to wait for lines with a deadline. */
function spawnRc(args: string[]) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    env: { ...process.env, RC_URL: t.url, RC_TOKEN: t.adminToken, NO_COLOR: '1' },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const { out, ended } = collectOutput(proc);
  return {
    proc,
    out,
    /** waits (deadline) until stdout or stderr holds a line matching `re` */
    async waitFor(re: RegExp, where: 'stdout' | 'stderr' = 'stdout', timeoutMs = 10_000) {
      return until(() => out[where].split('\n').find((l) => re.test(l)), {
        timeoutMs,
        message: `${where} of rc ${args.join(' ')} to show ${re} (so far: ${JSON.stringify(out)})`,
      });
    },
    async exit(timeoutMs = 15_000) {
      const code = await Promise.race([
        proc.exited,
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error(`rc ${args.join(' ')} still running: ${JSON.stringify(out)}`)),
            timeoutMs,
          ),
        ),
      ]);
      await ended;
      return code;
    },
  };
}

beforeAll(async () => {
  t = await startTestSystem('cli_watch');
  ({ mock } = await registerMockServices(t.api, 2));
  study = await createStudy(t.api);
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('rc releases watch', () => {
  test('draws a line per task change and exits 0 when the release is staged', async () => {
    mock.setBehaviour({ stageMs: 1500 });
    try {
      const release = await createRelease(t.api, [study]);
      const rc = spawnRc(['releases', 'watch', release.kf_id, '--interval', '100']);
      expect(await rc.exit()).toBe(0);
      const lines = rc.out.stdout.trim().split('\n');
      expect(lines[0]).toMatch(
        new RegExp(`^release ${release.kf_id} "Test release" \\w+ \\(version [\\d.]+, 2 tasks\\)$`),
      );
      for (const svc of ['svc-0', 'svc-1']) {
        const ofTask = lines.filter((l) => new RegExp(`^task TA_[0-9A-Z]{8} ${svc} `).test(l));
        expect(ofTask.some((l) => / running \[[#-]{20}\] +\d+%$/.test(l))).toBe(true);
        expect(ofTask.at(-1)).toMatch(/ staged \[#{20}\] 100%$/);
      }
      // progress was drawn as it rose, not only at the end
      const percents = lines.map((l) => / running \[[#-]+\] +(\d+)%$/.exec(l)?.[1]).filter(Boolean);
      expect(new Set(percents).size).toBeGreaterThan(1);
      expect(lines.at(-1)).toBe(`release ${release.kf_id} is staged (version ${release.version})`);
      expect(rc.out.stdout).not.toContain('\x1b');
    } finally {
      mock.reset();
    }
  });

  test('--json prints one object per change and a result line', async () => {
    const release = await createRelease(t.api, [study]);
    const rc = spawnRc(['releases', 'watch', release.kf_id, '--json', '--interval', '100']);
    expect(await rc.exit()).toBe(0);
    const objects = rc.out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(objects[0]).toMatchObject({ type: 'release', kf_id: release.kf_id });
    expect(objects.filter((o) => o.type === 'task' && o.state === 'staged')).toHaveLength(2);
    expect(objects.at(-1)).toEqual({
      type: 'result',
      kf_id: release.kf_id,
      state: 'staged',
      version: release.version,
      halt: null,
      exit_code: 0,
    });
  });

  test('--until-published keeps watching through publish; exits 0 when published', async () => {
    const release = await createRelease(t.api, [study]);
    await waitForState(t.api, release.kf_id, 'staged');
    const rc = spawnRc(['releases', 'watch', release.kf_id, '--until-published', '--interval', '100']);
    await rc.waitFor(/^release RE_\w+ "Test release" staged/);
    expect((await t.api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(200);
    expect(await rc.exit()).toBe(0);
    expect(rc.out.stdout).toMatch(/ published \[#{20}\] 100%/);
    expect(rc.out.stdout.trim().split('\n').at(-1)).toMatch(
      new RegExp(`^release ${release.kf_id} is published`),
    );
  });

  test('exits 4 when the release is canceled while it runs', async () => {
    mock.setBehaviour({ stageMs: 60_000 });
    try {
      const release = await createRelease(t.api, [study]);
      const rc = spawnRc(['releases', 'watch', release.kf_id, '--interval', '100']);
      await rc.waitFor(/^task TA_\w+ svc-\d running/);
      expect((await t.api('DELETE', `/releases/${release.kf_id}`)).status).toBeLessThan(300);
      expect(await rc.exit()).toBe(4);
      expect(rc.out.stdout).toMatch(/^task TA_\w+ svc-0 canceled/m);
      const [verdict, why] = rc.out.stdout.trim().split('\n').slice(-2);
      expect(verdict).toMatch(new RegExp(`^release ${release.kf_id} is canceled`));
      expect(why).toMatch(/^ {2}why: canceled by test-admin, \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    } finally {
      mock.reset();
    }
  });

  test('exits 3 when a task fails', async () => {
    mock.setBehaviour({ stageMs: 5_000 });
    mock.setBehaviour({ failAfterMs: 50 }, 'svc-1');
    try {
      const release = await createRelease(t.api, [study]);
      const rc = spawnRc(['releases', 'watch', release.kf_id]);
      expect(await rc.exit()).toBe(3);
      expect(rc.out.stdout).toMatch(/^task TA_\w+ svc-1 failed/m);
      expect(rc.out.stdout).toContain(`release ${release.kf_id} is failed`);
    } finally {
      mock.reset();
    }
  });

  test('an unknown release is exit 1 naming the id', async () => {
    const rc = spawnRc(['releases', 'watch', 'RE_00000000']);
    expect(await rc.exit()).toBe(1);
    expect(rc.out.stderr).toContain('release RE_00000000 does not exist');
  });
});

describe('rc events --follow', () => {
  test('prints transitions as they happen', async () => {
    const rc = spawnRc(['events', '--follow']);
    try {
      await rc.waitFor(/^following events at /, 'stderr');
      const release = await createRelease(t.api, [study]);
      await rc.waitFor(
        new RegExp(`release\\.staged\\s+${release.kf_id}\\s+"Test release" version ${release.version}`),
      );
      expect(rc.out.stdout).toMatch(/task\.running\s+TA_\w+\s+svc-0 release RE_\w+/);
    } finally {
      rc.proc.kill('SIGTERM');
    }
    expect(await rc.exit()).toBe(0);
  });

  test('--json --from all --release replays one release as notifications', async () => {
    const release = await createRelease(t.api, [study]);
    await waitForState(t.api, release.kf_id, 'staged');
    const rc = spawnRc(['events', '--follow', '--json', '--from', 'all', '--release', release.kf_id]);
    try {
      await rc.waitFor(/"type":"release\.staged"/);
    } finally {
      rc.proc.kill('SIGTERM');
    }
    await rc.exit();
    const notes = rc.out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(notes.every((n) => n.subject === release.kf_id || n.data.release_id === release.kf_id)).toBe(true);
    expect(notes.map((n) => n.type)).toContain('release.running');
    expect(notes.every((n) => n.specversion === '1.0' && Number.isInteger(n.seq))).toBe(true);
  });
});

describe('rc releases watch on a terminal', () => {
  test('keeps a line per task in place, notes above them, and gives the terminal back', () => {
    let screen = '';
    const terminal = {
      write(text: string) {
        screen += text;
      },
      isTTY: true,
    };
    const out = new Output(false, terminal);
    const notes: string[] = [];
    const ctx = { client: undefined as never, out, json: false, note: (m: string) => notes.push(m) };
    const task = (kf_id: string, service_name: string, state: string, progress: number | null) => ({
      kf_id,
      service_name,
      state,
      progress,
      release: null,
      task_service: null,
      created_at: null,
    });
    const release: Release = {
      kf_id: 'RE_TERMINAL',
      name: 'On a terminal',
      description: '',
      notes: [],
      state: 'running',
      studies: [],
      tasks: [task('TA_00000001', 'search', 'running', 10), task('TA_00000002', 'portal', 'waiting', null)],
      version: '1.2.3',
      created_at: null,
      tags: [],
      author: 'test',
      is_major: false,
    };
    const view = new WatchView(ctx, release);
    view.applyTask({ kf_id: 'TA_00000001', state: 'running', progress: 60 });
    view.note('event stream dropped; reconnecting');
    view.applyRelease({
      state: 'staged',
      tasks: [task('TA_00000001', 'search', 'staged', 100), task('TA_00000002', 'portal', 'staged', 100)],
    });
    view.finish(0);
    const plain = screen.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), ''); // colors off
    expect(notes).toEqual([]); // on a terminal a note goes above the lines, not to stderr
    expect(screen).toContain('event stream dropped; reconnecting\n');
    expect(screen).toContain('\x1b[?7l'); // no wrapping while drawing: a long line cannot push the others down
    expect(plain.endsWith('release RE_TERMINAL is staged (version 1.2.3)\n')).toBe(true);
    // the final drawing: every task at 100 %, the terminal's cursor and wrapping back on
    const final = plain.slice(plain.lastIndexOf('RE_TERMINAL On a terminal'));
    expect(final).toMatch(/search\s+TA_00000001\s+\[█{24}\] 100%\s+staged/);
    expect(final).toMatch(/portal\s+TA_00000002\s+\[█{24}\] 100%\s+staged/);
    expect(final).toContain('\x1b[?25h');
    expect(final).toContain('\x1b[?7h');
  });
});

describe('the SSE reader', () => {
  test('parses CRLF, multi-line data, comments, and ignores events without data', () => {
    const p = new SseParser();
    const events = [
      ...p.feed(': hello\r\nid: 7\r\nevent: a\r\ndata: one\r\ndata: two\r'),
      ...p.feed('\n\r\nevent: empty\n\ndata: x\n\n'),
    ];
    expect(events).toEqual([
      { id: '7', event: 'a', data: 'one\ntwo' },
      // an event without an id field has none of its own (followSse remembers the last one)
      { event: 'message', data: 'x' },
    ]);
  });

  test('reconnects after a dropped stream with Last-Event-ID', async () => {
    const seen: Array<string | null> = [];
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(req) {
        seen.push(req.headers.get('last-event-id'));
        const n = seen.length;
        const body = new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode(`id: ${n}\nevent: tick\ndata: {"n":${n}}\n\n`));
            if (n === 1) c.close(); // the first stream drops after one event
          },
        });
        return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
      },
    });
    const ac = new AbortController();
    const got: SseEvent[] = [];
    const reconnects: Array<string | undefined> = [];
    try {
      for await (const e of followSse({
        client: new ApiClient({ url: `http://127.0.0.1:${server.port}`, timeoutMs: 2000 }),
        path: '/events/stream',
        signal: ac.signal,
        retryMs: 10,
        onReconnect: (i) => reconnects.push(i.lastEventId),
      })) {
        got.push(e);
        if (got.length === 2) ac.abort();
      }
    } finally {
      server.stop(true);
    }
    expect(got.map((e) => e.data)).toEqual(['{"n":1}', '{"n":2}']);
    expect(seen).toEqual([null, '1']);
    expect(reconnects).toEqual(['1']);
  });
});
