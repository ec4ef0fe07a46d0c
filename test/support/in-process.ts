import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { type Config, loadConfig } from '../../src/config';
import { type ApplyOptions, applyBatch, replyText } from '../../src/coordinator/apply';
import { newMessageId } from '../../src/domain/ids';
import type { Action } from '../../src/domain/lifecycle/states';
import { createApp } from '../../src/gateway/app';
import { KnownTasks } from '../../src/gateway/features/tasks/known-tasks';
import type { IntentSender } from '../../src/gateway/http/context';
import { type Auth, createAuth } from '../../src/infra/auth';
import type { Delivery } from '../../src/infra/bus/intent-client';
import type { Intent, IntentReply } from '../../src/infra/bus/messages';
import { busNames } from '../../src/infra/bus/subjects';
import type { Db } from '../../src/infra/db/client';
import { queryRows } from '../../src/infra/db/rows';
import * as schema from '../../src/infra/db/schema';
import { createLogger } from '../../src/infra/logger';
import type { Lookup } from '../../src/infra/task-service/address-policy';
import { deriveTiming } from '../../src/timing';
import type { Api, ApiResponse } from './system';

/*
 * The gateway in-process, for API tests without servers: createApp on an in-memory PGlite
 * database migrated with the project's migrations, called with `app.request()`. Intents do not go
 * over NATS: InProcessIntents applies each with the coordinator's own batch code (applyBatch) and
 * answers as the coordinator would. No worker runs, so no task service is ever called: tasks stay
 * where the coordinator's first decision put them (their commands wait in the outbox).
 */

const MIGRATIONS = resolve(import.meta.dir, '../../drizzle');

/** The migrated empty database as a data-directory dump: each database starts from it (no migration per test file). */
let migrated: Promise<Blob> | undefined;

/** An empty database, migrated, in memory. */
export async function pgliteDatabase(): Promise<{ db: Db; close(): Promise<void> }> {
  migrated ??= (async () => {
    const first = new PGlite();
    try {
      await migrate(drizzle(first, { schema }), { migrationsFolder: MIGRATIONS });
      return await first.dumpDataDir('none');
    } finally {
      await first.close();
    }
  })();
  const client = new PGlite({ loadDataDir: await migrated });
  await client.waitReady;
  return { db: drizzle(client, { schema }) as unknown as Db, close: () => client.close() };
}

/**
 * Stands in for the NATS intent client: `apply` (default) applies each intent at once with the
 * coordinator's code and answers with its reply (JSON, as it travels on NATS); `silent` takes
 * intents and never answers, as when NATS or the coordinator is away (the gateway answers 202, and
 * `applyStored` then does what the coordinator does with intents NATS did not bring).
 */
export class InProcessIntents implements IntentSender {
  mode: 'apply' | 'silent' = 'apply';
  /** NATS's max_payload for replies: a larger one loses its snapshot, as the coordinator sends it */
  replyLimitBytes = 1024 * 1024;
  /** every intent handed over, in order */
  readonly delivered: Intent[] = [];

  constructor(
    private readonly db: Db,
    private readonly options: ApplyOptions,
    public replyTimeoutMs: number,
  ) {}

  async deliver(intent: Intent): Promise<Delivery> {
    this.delivered.push(intent);
    if (this.mode === 'silent') return { duplicate: false };
    return { reply: await this.apply(intent, true), duplicate: false };
  }

  async send(intent: Intent): Promise<IntentReply | undefined> {
    return (await this.deliver(intent)).reply;
  }

  /** callbacks: gathered per tick on NATS; here, one at a time like send */
  async sendGathered(intent: Intent): Promise<IntentReply | undefined> {
    return this.send(intent);
  }

  async post(intent: Intent): Promise<void> {
    this.delivered.push(intent);
    if (this.mode === 'apply') await this.apply(intent, false);
  }

  /** Applies the intents stored in Postgres and not answered yet (the coordinator's sweep); returns how many. */
  async applyStored(): Promise<number> {
    const rows = await queryRows<{ id: string; body: Intent | string }>(
      this.db,
      sql`select id, body from intents where applied_at is null order by created_at`,
    );
    for (const r of rows) await this.apply(typeof r.body === 'string' ? JSON.parse(r.body) : r.body, false);
    return rows.length;
  }

  /**
   * What workers would bring back: every task of the release answered `action` with 200 and this
   * state, in one batch (as the coordinator applies a fan-out's answers).
   */
  async answerAll(releaseId: string, action: Action, state: string): Promise<void> {
    const tasks = await queryRows<{ kf_id: string }>(
      this.db,
      sql`select kf_id from tasks where release_id = ${releaseId} order by seq`,
    );
    const results = tasks.map((t) => {
      const id = newMessageId();
      return {
        id,
        source: 'result' as const,
        result: {
          id,
          kind: 'task' as const,
          commandId: id,
          action,
          taskId: t.kf_id,
          releaseId,
          ok: true,
          state,
          latencyMs: 1,
        },
      };
    });
    await applyBatch(this.db, results, this.options);
  }

  private async apply(intent: Intent, answer: boolean): Promise<IntentReply | undefined> {
    const outcome = await applyBatch(
      this.db,
      [{ id: intent.id, source: 'intent', intent, replyTo: answer ? 'in-process' : undefined }],
      this.options,
    );
    const reply = outcome.replies[0]?.reply;
    return reply === undefined
      ? undefined
      : (JSON.parse(replyText(reply, this.replyLimitBytes)) as IntentReply);
  }
}

/** What the stub network knows: hosts resolve to a public documentation address; GET …/status answers. */
export class StubNetwork {
  /** every request the gateway made (the live /status check of a task service) */
  readonly requests: string[] = [];
  /** status and body of GET {url}/status per service base URL; unknown URLs answer 200 {"ok": true} */
  readonly statusOf = new Map<string, { status: number; body: unknown }>();

  readonly lookup: Lookup = async () => ['93.184.216.34'];

  /** the address each request was sent to (the gateway connects to the address the policy checked) */
  readonly connectedTo: string[] = [];

  readonly fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    this.connectedTo.push(url.hostname);
    // a request pinned to an address carries the name it was made for in its Host header
    const host = (init?.headers as Record<string, string> | undefined)?.host;
    if (host) url.host = host;
    this.requests.push(url.href);
    const answer = this.statusOf.get(url.href.replace(/\/status$/, '')) ?? {
      status: 200,
      body: { ok: true },
    };
    return Response.json(answer.body, { status: answer.status });
  }) as unknown as typeof fetch;
}

export interface InProcessGateway {
  app: ReturnType<typeof createApp>;
  db: Db;
  config: Config;
  auth: Auth;
  intents: InProcessIntents;
  network: StubNetwork;
  /** the tasks the gateway knows without reading them (callbacks) */
  knownTasks: KnownTasks;
  /** requests as an ADMIN */
  api: Api;
  /** requests without a token */
  anonymous: Api;
  /** requests with this bearer token */
  as(token: string): Api;
  mint: NonNullable<Auth['mint']>;
  close(): Promise<void>;
}

/** The gateway on its own in-memory database; `env` as the environment would give it. */
export async function inProcessGateway(env: Record<string, string> = {}): Promise<InProcessGateway> {
  const database = await pgliteDatabase();
  const config = loadConfig({
    NODE_ENV: 'test',
    PUBLIC_URL: 'http://rc.test',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const log = await createLogger({ level: config.LOG_LEVEL, format: 'json', production: false });
  const db = database.db;
  const auth = await createAuth(config, db, log);
  const timing = deriveTiming(config);
  const intents = new InProcessIntents(
    db,
    {
      names: busNames(config.NATS_PREFIX),
      publicUrl: config,
      poll: { jitter: config.POLL_JITTER },
      releaseTimeoutMs: config.RELEASE_TIMEOUT_MS,
      timing: timing.lifecycle,
      deadlines: timing.deadlines,
    },
    timing.replyTimeoutMs,
  );
  const network = new StubNetwork();
  const knownTasks = new KnownTasks();
  const app = createApp({
    knownTasks,
    db,
    intents,
    config,
    log,
    auth,
    fetch: network.fetch,
    lookup: network.lookup,
    health: async () => ({ database: true, bus: true }),
  });
  const mint = auth.mint!;
  const as = (token?: string) => requester(app, token);
  return {
    app,
    db,
    config,
    auth,
    intents,
    network,
    knownTasks,
    api: as(await mint({ username: 'test-admin', roles: ['ADMIN'] })),
    anonymous: as(),
    as,
    mint,
    close: () => database.close(),
  };
}

/** Requests to the app as HTTP would bring them; JSON bodies parsed (else kept as text). */
function requester(app: ReturnType<typeof createApp>, token?: string): Api {
  return async <T>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}) => {
    const headers: Record<string, string> = token
      ? { authorization: `Bearer ${token}`, ...extra }
      : { ...extra };
    if (headers.authorization === '') delete headers.authorization;
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    if (text !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(new TextEncoder().encode(text).length);
    }
    const res = await app.request(path, { method, headers, body: text });
    const raw = await res.text();
    let parsed: unknown = raw;
    try {
      parsed = raw ? JSON.parse(raw) : null;
    } catch {
      // not JSON; keep the text
    }
    return { status: res.status, body: parsed as T, headers: res.headers } satisfies ApiResponse<T>;
  };
}
