import { describe, expect, test } from 'bun:test';
import { newRunId, testDatabaseName, testPrefix } from './support/run';
import { planServices, where } from './support/services';

// How `npm test` gets Postgres and NATS (test/preload.ts): pure decisions, no server.

const up = { postgresAnswers: true, natsAnswers: true };
const down = { postgresAnswers: false, natsAnswers: false };

describe('planServices', () => {
  test('both answer: run, whether the variables are set or not', () => {
    expect(planServices(up)).toEqual({ kind: 'ready' });
    expect(planServices({ ...up, databaseUrl: 'postgres://db:5432/x', natsUrl: 'nats://n:4222' })).toEqual({
      kind: 'ready',
    });
  });

  test('nothing set and nothing answers: ask Docker, then containers, or one sentence without', () => {
    expect(planServices(down)).toEqual({ kind: 'ask-docker' });
    expect(planServices({ ...down, dockerAnswers: true })).toEqual({ kind: 'containers' });
    const missing = planServices({ ...down, dockerAnswers: false });
    expect(missing.kind).toBe('missing');
    const message = (missing as { message: string }).message;
    expect(message).toBe(
      'The tests need Postgres at 127.0.0.1:5432 (DATABASE_URL) and NATS with JetStream at 127.0.0.1:4222 (NATS_URL), ' +
        'which do not answer: start them (Debian/Ubuntu: apt-get install postgresql nats-server; macOS: brew install postgresql nats-server; run nats-server with -js), ' +
        'or point the variables at ones that run, or run a Docker engine so the tests start both in containers.',
    );
    expect(message.split('. ')).toHaveLength(1); // one sentence
  });

  test('a variable is set: never containers (the person chose a server); the sentence names it', () => {
    for (const facts of [
      { ...down, databaseUrl: 'postgres://u:secret@db.example.org:6543/x', dockerAnswers: true },
      { ...down, natsUrl: 'nats://n.example.org:4333', dockerAnswers: true },
    ]) {
      const plan = planServices(facts);
      expect(plan.kind).toBe('missing');
      expect((plan as { message: string }).message).toContain(
        'unset DATABASE_URL and NATS_URL with a Docker engine',
      );
    }
    const plan = planServices({ ...down, databaseUrl: 'postgres://u:secret@db.example.org:6543/x' });
    expect((plan as { message: string }).message).toContain('Postgres at db.example.org:6543 (DATABASE_URL)');
    expect((plan as { message: string }).message).not.toContain('secret');
  });

  test('one of them is missing: the sentence names only that one, and never starts containers', () => {
    const plan = planServices({ postgresAnswers: true, natsAnswers: false, dockerAnswers: true });
    expect(plan.kind).toBe('missing');
    const message = (plan as { message: string }).message;
    expect(message).toStartWith(
      'The tests need NATS with JetStream at 127.0.0.1:4222 (NATS_URL), which does not answer: start it',
    );
    expect(message).not.toContain('Postgres at');
  });

  test('where: host and port of a URL, the first of a NATS list, default ports', () => {
    expect(where('postgres://postgres@127.0.0.1/postgres')).toBe('127.0.0.1:5432');
    expect(where('nats://a:4333,nats://b:4333')).toBe('a:4333');
    expect(where('nats://localhost')).toBe('localhost:4222');
  });
});

describe('names of what a run creates', () => {
  test('carry the run id (which no random part can contain), so the end-of-run check finds them', () => {
    const run = process.env.RC_TEST_RUN!;
    expect(run).toMatch(/^r[0-9a-f]{5}$/);
    expect(newRunId()).toMatch(/^r[0-9a-f]{5}$/);
    expect(testPrefix('t')).toMatch(new RegExp(`^t${run}[0-9a-f]{8}$`));
    const db = testDatabaseName('Some Label!');
    expect(db).toMatch(new RegExp(`^rc_test_${run}_some_label__[0-9a-f]{8}$`));
    expect(db.length).toBeLessThanOrEqual(63); // Postgres truncates longer names
  });
});
