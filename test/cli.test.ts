import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { MockHandle } from '../mock-task-service/src/index';
import { startMock } from '../mock-task-service/src/index';
import { createRelease, createStudy, registerMockServices, studyId, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// The `rc` command line run as a child process against a live coordinator (loopback only).
const MAIN = join(import.meta.dir, '..', 'src', 'cli', 'main.ts');

let t: TestSystem;
let mock: MockHandle;
let extra: MockHandle;
let dataservice: ReturnType<typeof Bun.serve>;
let study: string;
const upstreamStudy = studyId();

async function rc(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    env: { ...process.env, RC_URL: t.url, RC_TOKEN: t.adminToken, NO_COLOR: '1', ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

beforeAll(async () => {
  dataservice = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () =>
      Response.json({
        results: [{ kf_id: upstreamStudy, name: 'Upstream study', visible: true }],
        _links: {},
      }),
  });
  t = await startTestSystem('cli', { DATASERVICE_URL: `http://127.0.0.1:${dataservice.port}` });
  ({ mock } = await registerMockServices(t.api, 2));
  extra = await startMock({ services: ['extra'], stageMs: 30, publishMs: 30 });
  study = await createStudy(t.api);
});
afterAll(async () => {
  await mock?.stop();
  await extra?.stop();
  await t?.stop();
  dataservice?.stop(true);
});

describe('rc usage', () => {
  test('--help lists the command groups and the exit codes; bad usage exits 2', async () => {
    const help = await rc(['--help']);
    expect(help.code).toBe(0);
    for (const word of ['services', 'releases', 'events', 'studies', 'RC_URL', 'RC_TOKEN', 'Exit codes'])
      expect(help.stdout).toContain(word);
    const sub = await rc(['releases', 'watch', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--until-published');
    expect(sub.stdout).toContain('--json');

    const unknown = await rc(['releases', 'bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'bogus'");
    const missing = await rc(['releases', 'create', '--study', study]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--name');
    const badNumber = await rc(['releases', 'list', '--limit', '0']);
    expect(badNumber.code).toBe(2);
    const badState = await rc(['releases', 'list', '--state', 'sideways']);
    expect(badState.code).toBe(2);
  });

  test('an unreachable coordinator is exit 1 with a message naming the URL', async () => {
    const res = await rc(['releases', 'list'], { RC_URL: 'http://127.0.0.1:1' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('Cannot reach the coordinator at http://127.0.0.1:1');
  });
});

describe('rc services', () => {
  let id: string;

  test('add, list, show (human and --json)', async () => {
    const added = await rc([
      'services',
      'add',
      '--name',
      'extra',
      '--url',
      extra.serviceUrl('extra'),
      '--description',
      'added by the CLI test',
    ]);
    expect(added.code).toBe(0);
    const m = /Added task service (TS_[0-9A-Z]{8}) \(extra\)/.exec(added.stdout);
    expect(m).not.toBeNull();
    id = m![1]!;
    expect(added.stdout).toContain('added by the CLI test');

    const list = await rc(['services', 'list']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+ENABLED\s+HEALTH\s+URL$/);
    const row = lines.find((l) => l.startsWith(id))!;
    expect(row).toBeDefined();
    // aligned: every row starts its NAME column where the header does
    expect(row.indexOf('extra')).toBe(lines[0]!.indexOf('NAME'));

    const json = await rc(['services', 'list', '--json']);
    expect(json.code).toBe(0);
    const page = JSON.parse(json.stdout);
    expect(page.count).toBe(3);
    expect(page.results.map((s: { kf_id: string }) => s.kf_id)).toContain(id);

    const show = await rc(['services', 'show', id, '--json']);
    expect(JSON.parse(show.stdout)).toMatchObject({ kf_id: id, name: 'extra', enabled: true });
  });

  test('check asks GET {url}/status directly: ok, then down (exit 1)', async () => {
    const ok = await rc(['services', 'check', id]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${id} extra: ok (HTTP 200`);
    expect(ok.stdout).toContain('"message":"ready"');
    const okJson = JSON.parse((await rc(['services', 'check', id, '--json'])).stdout);
    expect(okJson).toMatchObject({ kf_id: id, ok: true, status: 200, body: { name: 'extra' } });

    extra.setBehaviour({ statusMode: 'down', statusDownCode: 503 }, 'extra', 'status');
    try {
      const down = await rc(['services', 'check', id]);
      expect(down.code).toBe(1);
      expect(down.stdout).toContain(`${id} extra: down (HTTP 503`);
    } finally {
      extra.reset();
    }
  });

  test('disable and enable', async () => {
    const off = await rc(['services', 'disable', id]);
    expect(off.code).toBe(0);
    expect(off.stdout).toContain(`Disabled task service ${id}`);
    const disabled = JSON.parse((await rc(['services', 'list', '--enabled', 'false', '--json'])).stdout);
    expect(disabled.results.map((s: { kf_id: string }) => s.kf_id)).toEqual([id]);
    const on = await rc(['services', 'enable', id, '--json']);
    expect(on.code).toBe(0);
    expect(JSON.parse(on.stdout)).toMatchObject({ kf_id: id, enabled: true });
  });

  test('a bad service URL is a 400 naming the field', async () => {
    const res = await rc(['services', 'add', '--name', 'nope', '--url', 'not a url']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('Invalid request (400)');
    expect(res.stderr).toContain('url:');
  });
});

describe('rc releases', () => {
  let created: string;

  test('create (human) then the same idempotency key gives the same release (--json)', async () => {
    const res = await rc([
      'releases',
      'create',
      '--name',
      'CLI release',
      '--study',
      study,
      '--tag',
      'cli',
      '--tag',
      'test',
      '--description',
      'from rc',
      '--idempotency-key',
      'cli-test-1',
    ]);
    expect(res.code).toBe(0);
    const m = /Created release (RE_[0-9A-Z]{8}) "CLI release" \(state \w+, version [\d.]+, 3 tasks\)/.exec(
      res.stdout,
    );
    expect(m).not.toBeNull();
    created = m![1]!;
    expect(res.stdout).toContain(`rc releases watch ${created}`);

    // the same request again (a retry with another body would be a 422 naming the key)
    const retry = [
      'releases',
      'create',
      '--name',
      'CLI release',
      '--study',
      study,
      '--tag',
      'cli',
      '--tag',
      'test',
      '--description',
      'from rc',
      '--idempotency-key',
      'cli-test-1',
    ];
    const again = await rc([...retry, '--json']);
    expect(again.code).toBe(0);
    const body = JSON.parse(again.stdout);
    expect(body.kf_id).toBe(created);
    expect(body.tags).toEqual(['cli', 'test']);
    expect(body.description).toBe('from rc');

    const quiet = await rc([...retry, '-q']);
    expect(quiet).toMatchObject({ code: 0, stdout: `${created}\n` });
  });

  test('list, list --state, show', async () => {
    await waitForState(t.api, created, 'staged');
    const list = await rc(['releases', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+NAME\s+STATE\s+VERSION\s+TASKS\s+CREATED/);
    expect(list.stdout).toMatch(new RegExp(`${created}\\s+CLI release\\s+staged`));

    const staged = JSON.parse(
      (await rc(['releases', 'list', '--state', 'staged', '--limit', '5', '--json'])).stdout,
    );
    expect(staged.results.every((r: { state: string }) => r.state === 'staged')).toBe(true);
    expect(staged.results.map((r: { kf_id: string }) => r.kf_id)).toContain(created);
    const none = await rc(['releases', 'list', '--state', 'failed']);
    expect(none.stdout.trim()).toBe('No releases in state failed.');

    const show = await rc(['releases', 'show', created]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/state:\s+staged/);
    expect(show.stdout).toMatch(/TASK\s+SERVICE\s+STATE\s+PROGRESS/);
    expect(show.stdout).toMatch(/TA_[0-9A-Z]{8}\s+svc-0\s+staged\s+\[#{20}\] 100%/);
    const json = JSON.parse((await rc(['releases', 'show', created, '--json'])).stdout);
    expect(json.kf_id).toBe(created);
    expect(json.tasks).toHaveLength(3);
  });

  test('publish a staged release; publishing again is a 409', async () => {
    const res = await rc(['releases', 'publish', created]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`Release ${created} publishing`);
    await waitForState(t.api, created, 'published');
    const again = await rc(['releases', 'publish', created]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('Conflict (409)');
  });

  test('cancel', async () => {
    const r = JSON.parse(
      (await rc(['releases', 'create', '--name', 'to cancel', '--study', study, '--json'])).stdout,
    );
    const res = await rc(['releases', 'cancel', r.kf_id]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`Release ${r.kf_id} (canceling|canceled)`));
    await waitForState(t.api, r.kf_id, 'canceled');
    const json = JSON.parse((await rc(['releases', 'show', r.kf_id, '--json'])).stdout);
    expect(json.state).toBe('canceled');
  });
});

describe('errors', () => {
  test('401 without a token says how to pass one', async () => {
    const res = await rc(['releases', 'create', '--name', 'x', '--study', study], { RC_TOKEN: '' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('needs a token (401');
    expect(res.stderr).toContain('--token');
    expect(res.stderr).toContain('RC_TOKEN');
    const bad = await rc(['releases', 'cancel', 'RE_00000000', '--token', 'not-a-jwt']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('rejected the token (401');
  });

  test('404 names the id, in words and in --json', async () => {
    const res = await rc(['releases', 'show', 'RE_00000000']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('release RE_00000000 does not exist');
    const svc = await rc(['services', 'check', 'TS_00000000']);
    expect(svc.code).toBe(1);
    expect(svc.stderr).toContain('task service TS_00000000 does not exist');
    const json = await rc(['releases', 'publish', 'RE_00000000', '--json']);
    expect(json.code).toBe(1);
    expect(json.stdout).toBe('');
    const err = JSON.parse(json.stderr).error;
    expect(err.status).toBe(404);
    expect(err.message).toContain('RE_00000000');
  });
});

describe('rc token and rc studies add', () => {
  test('token --dev prints an ADMIN token that can write; --service a task-service token that cannot', async () => {
    const admin = await rc(['token', '--dev'], { RC_TOKEN: '' });
    expect(admin.code).toBe(0);
    const token = admin.stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const id = studyId();
    const added = await rc(['studies', 'add', id, '--name', 'Added by hand'], { RC_TOKEN: token });
    expect(added.code).toBe(0);
    expect(added.stdout.trim()).toBe(`Added study ${id} (Added by hand)`);
    const again = await rc(['studies', 'add', id, '--json'], { RC_TOKEN: token });
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stderr).error.body).toEqual({
      kf_id: ['A study with this kf_id already exists.'],
    });

    const service = JSON.parse((await rc(['token', '--dev', '--service', '--json'])).stdout);
    expect(service).toMatchObject({ kind: 'service', roles: [], expires_in: 43_200 });
    const refused = await rc(['studies', 'add', studyId()], { RC_TOKEN: service.token });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('403');
  });

  test('token without --dev is bad usage', async () => {
    const res = await rc(['token']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('add --dev');
  });

  test('a reader that stops early (| head) ends rc quietly, exit 0', async () => {
    for (const args of ['--help', 'releases list', 'events --follow --from all']) {
      // its own process group, so that whatever happens nothing of the pipeline outlives the test
      const script = `"$0" "$1" ${args} | head -n 1 >/dev/null`;
      const proc = spawn('bash', ['-o', 'pipefail', '-c', script, process.execPath, MAIN], {
        env: { ...process.env, RC_URL: t.url, RC_TOKEN: t.adminToken, NO_COLOR: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
        detached: true,
      });
      let stderr = '';
      proc.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      // a follower learns that its reader is gone at its next write, as `tail -f | head` does:
      // new releases give it something to write until it has ended
      const follows = args.includes('--follow');
      try {
        await until(
          async () => {
            if (proc.exitCode === null && follows) await createRelease(t.api, [study]);
            return proc.exitCode !== null;
          },
          { timeoutMs: 20_000, intervalMs: 200, message: `rc ${args} | head to end` },
        );
      } finally {
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          // the whole pipeline has ended
        }
      }
      const code = await exited;
      expect({ args, code, stderr: stderr.replace(/^following events .*\n/m, '') }).toEqual({
        args,
        code: 0,
        stderr: '',
      });
    }
  }, 70_000);
});

describe('rc events and rc studies', () => {
  test('events lists the event log of a release', async () => {
    const [latest] = (await t.api('GET', '/releases?state=published')).body.results;
    const res = await rc(['events', '--release', latest.kf_id, '--limit', '100']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^CREATED\s+ID\s+TYPE\s+RELEASE\s+MESSAGE/);
    expect(res.stdout).toContain('changed from publishing to published');
    const json = JSON.parse((await rc(['events', '--release', latest.kf_id, '--json'])).stdout);
    expect(json.count).toBeGreaterThan(0);
  });

  test('studies sync prints the counts; studies list shows the new study', async () => {
    const res = await rc(['studies', 'sync']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Studies synced: 1 new, \d+ deleted, 0 updated/);
    expect(res.stdout).toContain(`new: ${upstreamStudy}`);
    const again = JSON.parse((await rc(['studies', 'sync', '--json'])).stdout);
    expect(again).toMatchObject({ new: [], updated: [] });
    const list = await rc(['studies', 'list']);
    expect(list.stdout).toMatch(new RegExp(`${upstreamStudy}\\s+Upstream study`));
  });
});

describe('why and how long', () => {
  test('show and watch say why a failed release halted; show gives each task its time per phase', async () => {
    const refusing = mock.serviceNames[0]!;
    mock.setBehaviour({ httpStatus: 503 }, refusing, 'start');
    try {
      // a study of its own: the sync tests above may have marked the shared one deleted
      const created = await createRelease(t.api, [await createStudy(t.api)]);
      await waitForState(t.api, created.kf_id, 'failed');
      const show = await rc(['releases', 'show', created.kf_id]);
      expect(show.code).toBe(0);
      expect(show.stdout).toMatch(
        new RegExp(`why:\\s+failed at ${refusing} \\(task TA_\\w+\\).*start refused: HTTP 503`),
      );
      expect(show.stdout).toMatch(/INITIALIZE\s+RUNNING\s+STAGED\s+PUBLISHING\s+TOTAL/);
      const watch = await rc(['releases', 'watch', created.kf_id]);
      expect(watch.code).toBe(3);
      expect(watch.stdout).toContain(`why: failed at ${refusing}`);
      const json = await rc(['releases', 'watch', created.kf_id, '--json']);
      const result = json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .find((o) => o.type === 'result');
      expect(result.halt).toMatchObject({ reason: 'failed', service_name: refusing });
    } finally {
      mock.setBehaviour({ httpStatus: 0 }, refusing, 'start');
    }
  });
});
