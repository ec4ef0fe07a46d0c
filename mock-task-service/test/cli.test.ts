import { afterEach, describe, expect, test } from 'bun:test';
import type { Subprocess } from 'bun';
import { optionsFromArgs } from '../src/cli.ts';
import { task } from './helpers.ts';

const cli = new URL('../src/cli.ts', import.meta.url).pathname;
const example = new URL('../scenarios/example.json', import.meta.url).pathname;
const running: Subprocess[] = [];
afterEach(async () => {
  for (const p of running.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
});

function spawnCli(args: string[]) {
  const proc = Bun.spawn([process.execPath, cli, ...args], { stdout: 'pipe', stderr: 'pipe' });
  running.push(proc);
  return proc;
}

/** Reads stdout until `marker` appears or the deadline passes. */
async function readUntil(
  stream: ReadableStream<Uint8Array>,
  marker: string,
  timeoutMs = 10_000,
): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + timeoutMs;
  try {
    while (!text.includes(marker)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no "${marker}" within ${timeoutMs} ms; got: ${text}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timeout; got: ${text}`)), remaining);
        }),
      ]).finally(() => clearTimeout(timer));
      if (chunk.done) break;
      text += decoder.decode(chunk.value);
    }
  } finally {
    reader.releaseLock();
  }
  return text;
}

describe('CLI', () => {
  test('starts, prints one URL line per service, applies flags, stops cleanly on SIGTERM', async () => {
    const proc = spawnCli([
      '--port',
      '0',
      '--services',
      '3',
      '--stage-ms',
      '100',
      '--fail-action',
      'svc-1/start:503',
      '--alias',
      'pending=initialized',
      '--latency',
      '0-5',
    ]);
    const out = await readUntil(proc.stdout, '# control');
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(5);
    const urls = Object.fromEntries(lines.slice(0, 4).map((l) => l.split(' ') as [string, string]));
    expect(Object.keys(urls)).toEqual(['mock-task-service', 'svc-0', 'svc-1', 'svc-2']);
    expect(urls['svc-1']).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/s\/svc-1$/);
    expect(lines[4]).toBe(`# control ${urls['mock-task-service']}/_control`);

    const status = await fetch(`${urls['svc-2']}/status`);
    expect(await status.json()).toMatchObject({ name: 'svc-2' });
    const init = await task(urls['svc-1']!, 'initialize', 'TA_CLI');
    expect(init.body.state).toBe('initialized');
    expect((await task(urls['svc-1']!, 'start', 'TA_CLI')).status).toBe(503);
    expect((await task(urls['svc-0']!, 'initialize', 'TA_CLI')).status).toBe(200);

    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(await new Response(proc.stderr).text()).toContain('SIGTERM');
  });

  test('SIGINT also stops it with exit code 0; --scenario works', async () => {
    const proc = spawnCli(['--port', '0', '--scenario', example]);
    const out = await readUntil(proc.stdout, '# control');
    expect(out).toContain('gamma http://127.0.0.1:');
    proc.kill('SIGINT');
    expect(await proc.exited).toBe(0);
  });

  test('--help prints usage; a bad flag exits 2 with a message', async () => {
    const help = spawnCli(['--help']);
    expect(await help.exited).toBe(0);
    const usage = await new Response(help.stdout).text();
    for (const flag of [
      '--port',
      '--services',
      '--scenario',
      '--callback',
      '--callback-auth',
      '--jwt-claim',
      '--drop-reply',
      '--latency',
      '--fail-action',
    ]) {
      expect(usage).toContain(flag);
    }
    const bad = spawnCli(['--latency', 'soon']);
    expect(await bad.exited).toBe(2);
    expect(await new Response(bad.stderr).text()).toContain('--latency');
  });

  test('flags map onto the scenario (parsed without starting a server)', async () => {
    const opts = await optionsFromArgs([
      '--port',
      '0',
      '--services',
      'a,b',
      '--callback',
      'after',
      '--coordinator-url',
      'http://127.0.0.1:3000',
      '--callback-token',
      'tok',
      '--hang',
      'a/publish',
      '--drop',
      'status',
      '--status',
      'flap',
      '--progress',
      'string',
      '--fail-after',
      '500',
      '--upper-case-states',
    ]);
    expect(opts?.port).toBe(0);
    expect(opts?.scenario).toMatchObject({
      services: ['a', 'b'],
      coordinatorUrl: 'http://127.0.0.1:3000',
      callbackToken: 'tok',
      behaviour: {
        callback: 'after',
        statusMode: 'flap',
        progressForm: 'string',
        failAfterMs: 500,
        upperCaseStates: true,
      },
      rules: [
        { service: 'a', action: 'publish', behaviour: { hang: true } },
        { action: 'status', behaviour: { drop: true } },
      ],
    });
    await expect(optionsFromArgs(['--callback', 'sometimes'])).rejects.toThrow('callback');
    await expect(optionsFromArgs(['--callback-auth', 'basic'])).rejects.toThrow('callbackAuth');
    await expect(optionsFromArgs(['--hang', 'explode'])).rejects.toThrow('unknown action');
    expect(await optionsFromArgs(['-h'])).toBeNull();
  });

  test('flags for credential-less callbacks, lost replies and machine-token services', async () => {
    const opts = await optionsFromArgs([
      '--callback-auth',
      'none',
      '--drop-reply',
      'svc-0/start',
      '--jwks-url',
      'http://127.0.0.1:3000/.well-known/jwks.json',
      '--jwt-audience',
      'urn:idp:svc',
      '--jwt-claim',
      'gty=client-credentials',
      '--jwt-claim',
      'azp=release-coordinator',
    ]);
    expect(opts).toMatchObject({
      jwtAudience: 'urn:idp:svc',
      jwtRequiredClaims: { gty: 'client-credentials', azp: 'release-coordinator' },
      scenario: {
        behaviour: { callbackAuth: 'none' },
        rules: [{ service: 'svc-0', action: 'start', behaviour: { dropReply: true } }],
      },
    });
    await expect(optionsFromArgs(['--jwks-url', 'http://x', '--jwt-claim', 'gty'])).rejects.toThrow(
      'NAME=VALUE',
    );
    await expect(optionsFromArgs(['--jwt-claim', 'gty=client-credentials'])).rejects.toThrow('--jwks-url');
  });
});
