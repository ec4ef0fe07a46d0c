import { and, eq } from 'drizzle-orm';
import { BusUnavailable } from '../../../infra/bus/intent-client';
import type { IntentReply, StoredIntent } from '../../../infra/bus/messages';
import { intents } from '../../../infra/db/schema';
import { currentBudget } from '../../../infra/request-budget';
import { sleep } from '../../../infra/time';
import type { GatewayDeps } from '../../http/context';
import { ApiError } from '../../http/errors';
import { IDEMPOTENCY_HEADER } from '../../http/idempotency';

/*
 * What a caller asks of a release (create, cancel, publish) is stored in Postgres before anything
 * goes on NATS (docs/architecture.md, "What may be lost on the bus"). From that commit on, the
 * request will be applied: NATS only brings it to the coordinator quickly, and the coordinator
 * finds one the bus did not bring in Postgres. So an answer of 202 is always kept, a gateway cut
 * off from NATS still takes requests, and a 503 means only that Postgres did not store it.
 */

type Deps = Pick<GatewayDeps, 'db' | 'intents' | 'log'>;

/** The Idempotency-Key of a create: keys are per caller, and bound to the request they came with. */
export interface IntentKey {
  caller: string;
  key: string;
  requestHash: string;
}

export interface Sent<I extends StoredIntent> {
  /** the intent that is (or was) applied: an earlier one with the same key, or this one */
  intent: I;
  /** the coordinator's answer, when it came in time */
  reply?: IntentReply;
}

/** how often a waiting request reads the intent's answer from Postgres (NATS brings it sooner) */
const FIRST_READ_MS = 50;
const MAX_READ_PAUSE_MS = 500;
/** what a request keeps of its budget after waiting, to answer with what it has */
const ANSWER_MARGIN_MS = 1_000;

/**
 * Stores the intent, then sends it on NATS and waits for the coordinator's answer (on NATS or in
 * Postgres, whichever comes first) until the reply timeout. With a key already used by this caller
 * for the same request, nothing new is stored: the earlier intent's answer is awaited instead,
 * unless the coordinator refused it (nothing was created, so the key may be tried again).
 */
export async function sendIntent<I extends StoredIntent>(
  deps: Deps,
  intent: I,
  key?: IntentKey,
): Promise<Sent<I>> {
  const earlier = await record(deps, intent, key);
  if (earlier) {
    if (earlier.reply) return { intent: earlier.intent as I, reply: earlier.reply };
    return { intent: earlier.intent as I, reply: await awaitReply(deps, earlier.intent, false) };
  }
  return { intent, reply: await awaitReply(deps, intent, true) };
}

/** Whether this caller's key names an intent that was not refused (its request needs no new checks). */
export async function keptEarlier(
  deps: Pick<Deps, 'db'>,
  type: StoredIntent['type'],
  key: IntentKey,
): Promise<boolean> {
  const [row] = await deps.db
    .select({ reply: intents.reply })
    .from(intents)
    .where(and(eq(intents.type, type), eq(intents.caller, key.caller), eq(intents.idempotencyKey, key.key)));
  return row !== undefined && (!row.reply || row.reply.status < 400);
}

interface Earlier {
  intent: StoredIntent;
  reply: IntentReply | null;
}

async function record(deps: Deps, intent: StoredIntent, key?: IntentKey): Promise<Earlier | undefined> {
  const row = {
    id: intent.id,
    type: intent.type,
    releaseId: intent.type === 'release.create' ? intent.release.kfId : intent.releaseId,
    body: intent,
    caller: key?.caller ?? null,
    idempotencyKey: key?.key ?? null,
    requestHash: key?.requestHash ?? null,
  };
  if (!key) {
    await deps.db.insert(intents).values(row);
    return undefined;
  }
  // A twin that inserts between our read and our insert makes the insert a no-op: read again.
  for (let attempt = 0; ; attempt++) {
    const outcome = await deps.db.transaction(async (tx) => {
      const [found] = await tx
        .select()
        .from(intents)
        .where(
          and(
            eq(intents.type, intent.type),
            eq(intents.caller, key.caller),
            eq(intents.idempotencyKey, key.key),
          ),
        )
        .for('update');
      if (found) {
        if (found.requestHash !== key.requestHash) {
          throw new ApiError(422, {
            [IDEMPOTENCY_HEADER]: ['This key was already used with a different request body.'],
          });
        }
        const reply = found.reply ?? null;
        if (!reply || reply.status < 400) return { earlier: { intent: found.body as StoredIntent, reply } };
        // refused by the coordinator (e.g. a study deleted meanwhile): nothing was created
        await tx.update(intents).set({ idempotencyKey: null }).where(eq(intents.id, found.id));
      }
      const inserted = await tx
        .insert(intents)
        .values(row)
        .onConflictDoNothing()
        .returning({ id: intents.id });
      return { inserted: inserted.length > 0 };
    });
    if ('earlier' in outcome) return outcome.earlier;
    if (outcome.inserted) return undefined;
    if (attempt >= 2) throw new Error('the Idempotency-Key is being used by requests that keep racing');
  }
}

/** The answer from NATS or from Postgres, whichever comes first; undefined when none came in time. */
async function awaitReply(deps: Deps, intent: StoredIntent, send: boolean): Promise<IntentReply | undefined> {
  const budget = currentBudget();
  const waitMs = Math.min(
    deps.intents.replyTimeoutMs,
    (budget?.remainingMs() ?? Infinity) - ANSWER_MARGIN_MS,
  );
  const until = performance.now() + Math.max(0, waitMs);
  let settled = false;
  const viaBus = send ? deliver(deps, intent) : Promise.resolve(undefined);
  const viaDb = (async () => {
    for (let pause = FIRST_READ_MS; ; pause = Math.min(pause * 2, MAX_READ_PAUSE_MS)) {
      const left = until - performance.now();
      if (left <= 0 || settled) return undefined;
      await sleep(Math.min(pause, left));
      if (settled) return undefined;
      const reply = await storedReply(deps, intent.id);
      if (reply) return reply;
    }
  })();
  try {
    return await firstAnswer([viaBus, viaDb]);
  } finally {
    settled = true;
  }
}

/** The coordinator's answer stored with the intent; a failed read waits for NATS instead. */
async function storedReply(deps: Deps, id: string): Promise<IntentReply | undefined> {
  try {
    const [row] = await deps.db.select({ reply: intents.reply }).from(intents).where(eq(intents.id, id));
    return row?.reply ?? undefined;
  } catch {
    return undefined;
  }
}

async function deliver(deps: Deps, intent: StoredIntent): Promise<IntentReply | undefined> {
  try {
    return (await deps.intents.deliver(intent)).reply;
  } catch (err) {
    // stored already: the coordinator finds it in Postgres
    const level = err instanceof BusUnavailable ? 'debug' : 'warn';
    deps.log[level](
      { err: String(err), intent: intent.id },
      'intent not sent on NATS; the coordinator will read it from Postgres',
    );
    return undefined;
  }
}

/** The first of the promises to resolve with an answer; undefined once all resolved without one. */
function firstAnswer<T>(promises: Array<Promise<T | undefined>>): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    let left = promises.length;
    for (const p of promises) {
      p.then((value) => {
        if (value !== undefined) resolve(value);
        else if (--left === 0) resolve(undefined);
      }, reject);
    }
  });
}
