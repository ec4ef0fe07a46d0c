import type postgres from 'postgres';
import type { Logger } from '../logger';
import { currentBudget, type RequestBudget } from '../request-budget';

type Sql = postgres.Sql;
type TransactionSql = postgres.TransactionSql;

/**
 * How fast the gateway decides that Postgres is gone, and what it asks of the server. A request's
 * statement pending for `suspectAfterMs` starts a check on a connection of its own (connect and
 * `select 1` within `probeTimeoutMs`); a failed check opens the circuit: every request of the
 * gateway answers 503 at once, with nothing queued in the driver, until a check every
 * `reprobeEveryMs` succeeds. So a request waits at most suspect + probe = 1.25 s for an unreachable
 * Postgres.
 *
 * `idleInTransactionMs` is kept below that: a request's transaction whose COMMIT was held up by
 * the outage has been ended by the server before the gateway answers 503, so the COMMIT arriving
 * later (after a partition heals) finds no transaction to commit. `commitMarginMs`: a transaction
 * this close to its request's deadline rolls back instead of committing.
 */
export const GUARD = {
  suspectAfterMs: 250,
  probeTimeoutMs: 1_000,
  /** a probe waits probeTimeoutMs of time this process was responsive, and this long at most */
  probeWaitMaxMs: 5_000,
  reprobeEveryMs: 500,
  /** while Postgres is reachable, at most one check this often (a busy pool also makes statements wait) */
  minProbeGapMs: 1_000,
  idleInTransactionMs: 1_000,
  commitMarginMs: 1_000,
};

/** Postgres cannot be reached, or did not answer within the request's budget: 503, retry later. */
export class DatabaseUnavailable extends Error {
  readonly code = 'DATABASE_UNAVAILABLE';
  override readonly name = 'DatabaseUnavailable';
}

/** A transaction of a request that was answered before it could commit: rolled back. */
class TransactionAbandoned extends Error {
  override readonly name = 'TransactionAbandoned';
}

/** The fate of one guarded unit of work: set once it failed, so a transaction still running rolls back. */
interface Work {
  failed?: Error;
}

/** Reads run as they are; every other statement of a request runs in a transaction of its own. */
const READ = /^\s*(select|show|explain)\b/i;

/**
 * postgres.js with a deadline for the statements of a request (see RequestBudget) and a circuit
 * breaker. Outside a request (the coordinator, the scheduler, start-up) statements pass through
 * unchanged.
 *
 * postgres.js has no timeout for a statement waiting in its pool and no way to withdraw one safely
 * (cancelling a statement a connection is being opened for leaves that connection unusable), so
 * when the circuit opens the whole pool is replaced: the old one is destroyed, which rejects every
 * statement still queued in it (never sent later) and ends its sessions (the server rolls back
 * their open transactions). A request's write is a transaction that checks, before COMMIT, that
 * the request has not been answered; a statement held up by the outage and delivered later
 * therefore changes nothing.
 */
export class PostgresGuard {
  private pool: Sql;
  private open = false;
  private probing = false;
  private lastProbeAt = Number.NEGATIVE_INFINITY;
  private reprobe?: ReturnType<typeof setTimeout>;
  private closed = false;
  /** how to fail each guarded unit of work in flight, when the circuit opens */
  private readonly inFlight = new Set<(err: Error) => void>();
  /** what drizzle is given: the pool, with `unsafe` and `begin` guarded */
  readonly client: Sql;

  constructor(
    private readonly newPool: () => Sql,
    private readonly newProbe: () => Sql,
    private readonly log?: Logger,
  ) {
    this.pool = newPool();
    const guard = this;
    this.client = new Proxy(function guardedSql() {} as unknown as Sql, {
      get(_target, prop) {
        if (prop === 'unsafe') return guard.unsafe;
        if (prop === 'begin') return guard.begin;
        const value = Reflect.get(guard.pool, prop);
        return typeof value === 'function' ? value.bind(guard.pool) : value;
      },
      apply(_target, _this, args) {
        return (guard.pool as unknown as (...a: unknown[]) => unknown)(...args);
      },
    });
  }

  /** the pool itself (migrations, advisory locks): no guard */
  get current(): Sql {
    return this.pool;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /**
   * Reachability on a connection of its own (so a busy pool does not look like an outage). Only
   * reports: the circuit follows the requests' own statements.
   */
  async ping(): Promise<boolean> {
    return !this.open && (await this.reachable());
  }

  async close() {
    this.closed = true;
    clearTimeout(this.reprobe);
    await this.pool.end({ timeout: 5 });
  }

  private readonly unsafe = (text: string, params?: unknown[], options?: postgres.UnsafeQueryOptions) => {
    const budget = currentBudget();
    const run = (sql: Sql | TransactionSql, values: boolean) => {
      const query = sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], {
        ...options,
        // Every statement prepared (postgres.js caches it per connection by its text): drizzle asks
        // for that only of named statements, and an unprepared statement with parameters costs two
        // round trips (Parse/Describe, then Bind/Execute), holding up the pipeline behind it.
        prepare: true,
      });
      return values ? query.values() : query;
    };
    if (!budget) return run(this.pool, false);
    return new GuardedStatement((values) =>
      READ.test(text)
        ? this.guarded(budget, () => run(this.pool, values))
        : this.transaction(budget, (tx) => run(tx, values)),
    );
  };

  private readonly begin = (...args: unknown[]) => {
    const budget = currentBudget();
    const pool = this.pool as unknown as { begin: (...a: unknown[]) => Promise<unknown> };
    if (!budget) return pool.begin(...args);
    const body = args.at(-1) as (tx: TransactionSql) => unknown;
    const options = args.length > 1 ? (args[0] as string) : undefined;
    return this.transaction(budget, body, options);
  };

  /**
   * Runs `body` in a transaction bounded by the request: server-side limits for its statements and
   * its idle time, no statement after the request failed, and ROLLBACK instead of COMMIT when the
   * request was answered meanwhile (or its deadline is too close).
   */
  private transaction<T>(
    budget: RequestBudget,
    body: (tx: TransactionSql) => T | PromiseLike<T>,
    options?: string,
  ): Promise<T> {
    return this.guarded(budget, (work) => {
      const inside = async (tx: TransactionSql) => {
        const refuseIfFailed = () => {
          if (work.failed) throw new TransactionAbandoned(`request already answered: ${work.failed.message}`);
        };
        refuseIfFailed();
        // started before the body's first statement, and sent in the same write
        const limits = tx
          .unsafe(
            'select set_config($1, $2, true), set_config($3, $4, true)',
            [
              'statement_timeout',
              String(Math.max(1, Math.floor(budget.remainingMs()))),
              'idle_in_transaction_session_timeout',
              String(GUARD.idleInTransactionMs),
            ],
            { prepare: true },
          )
          .execute();
        const [, result] = await Promise.all([limits, body(guardedTransaction(tx, refuseIfFailed))]);
        refuseIfFailed();
        if (budget.remainingMs() < GUARD.commitMarginMs)
          throw new DatabaseUnavailable('Too close to the request deadline to commit; rolled back.');
        return result;
      };
      const pool = this.pool as unknown as {
        begin: (...a: unknown[]) => Promise<T>;
      };
      return options === undefined ? pool.begin(inside) : pool.begin(options, inside);
    });
  }

  /**
   * `run` bounded by the request: refused at once while the circuit is open, failed when the
   * request's budget runs out, when the request is abandoned, or when the circuit opens meanwhile.
   * A statement still pending after `suspectAfterMs` makes the guard check Postgres.
   */
  private guarded<T>(budget: RequestBudget, run: (work: Work) => PromiseLike<T>): Promise<T> {
    if (this.open) return Promise.reject(new DatabaseUnavailable('Postgres is unreachable.'));
    if (budget.abandoned) return Promise.reject(budget.abandoned);
    const remaining = budget.remainingMs();
    if (remaining <= 0)
      return Promise.reject(new DatabaseUnavailable('Postgres did not answer within the request deadline.'));
    return new Promise<T>((resolve, reject) => {
      const work: Work = {};
      const fail = (err: Error) => {
        if (work.failed) return;
        work.failed = err;
        cleanup();
        reject(err);
      };
      const forget = budget.whenAbandoned(fail);
      const suspect = setTimeout(() => this.suspect(), GUARD.suspectAfterMs);
      const expire = setTimeout(
        () => fail(new DatabaseUnavailable('Postgres did not answer within the request deadline.')),
        remaining,
      );
      const cleanup = () => {
        this.inFlight.delete(fail);
        forget();
        clearTimeout(suspect);
        clearTimeout(expire);
      };
      this.inFlight.add(fail);
      Promise.resolve()
        .then(() => run(work))
        .then(
          (value) => {
            if (work.failed) return;
            cleanup();
            resolve(value);
          },
          (err: unknown) => {
            if (work.failed) return;
            // an error Postgres sent is about the statement; a driver error may be about reaching it
            const name = (err as { name?: string })?.name;
            if (name !== 'PostgresError' && !(err instanceof DatabaseUnavailable)) this.suspect();
            fail(err instanceof Error ? err : new Error(String(err)));
          },
        );
    });
  }

  private suspect() {
    if (this.open || this.probing || this.closed) return;
    if (performance.now() - this.lastProbeAt < GUARD.minProbeGapMs) return;
    void this.check();
  }

  private async check() {
    this.probing = true;
    const ok = await this.reachable();
    this.probing = false;
    if (this.closed) return;
    if (!ok) this.trip();
    else if (this.open) {
      this.open = false;
      this.log?.info('Postgres is reachable again');
    }
  }

  /**
   * Whether Postgres answers `select 1` on a connection of its own within probeTimeoutMs of time
   * this process was responsive. Time the event loop was held (a large batch) is not counted: a
   * connection's handshake takes several turns of the loop, and a stalled process is not a sign
   * that Postgres is gone. Tripping on a stall would reset the pool under load, which makes it
   * worse. The wait is bounded all the same (probeWaitMaxMs).
   */
  private async reachable(): Promise<boolean> {
    this.lastProbeAt = performance.now();
    const probe = this.newProbe();
    const waited = responsiveWait(GUARD.probeTimeoutMs, GUARD.probeWaitMaxMs);
    try {
      return await Promise.race([
        probe`select 1`.then(
          () => true,
          () => false,
        ),
        waited.done.then(() => false),
      ]);
    } finally {
      waited.cancel();
      probe.end({ timeout: 0 }).catch(() => {});
    }
  }

  /** Opens the circuit (once per outage): fresh pool, guarded work in flight failed, checks scheduled. */
  private trip() {
    if (this.closed) return;
    if (!this.open) {
      this.open = true;
      this.log?.warn(
        { inFlight: this.inFlight.size },
        'Postgres unreachable: requests answer 503 until it is back',
      );
      const old = this.pool;
      this.pool = this.newPool();
      old.end({ timeout: 0 }).catch(() => {});
      const err = new DatabaseUnavailable('Postgres is unreachable.');
      for (const fail of [...this.inFlight]) fail(err);
    }
    clearTimeout(this.reprobe);
    this.reprobe = setTimeout(() => void this.check(), GUARD.reprobeEveryMs);
  }
}

/**
 * Resolves once `ms` of responsive time has passed, or `maxMs` in all. Responsive time is counted
 * in ticks of RESPONSIVE_TICK_MS; a tick that came late counts only as two ticks (the rest of the
 * gap, this process was stalled).
 */
function responsiveWait(ms: number, maxMs: number): { done: Promise<void>; cancel: () => void } {
  let timer: ReturnType<typeof setInterval> | undefined;
  const done = new Promise<void>((resolve) => {
    const started = performance.now();
    let last = started;
    let counted = 0;
    timer = setInterval(() => {
      const now = performance.now();
      counted += Math.min(now - last, 2 * RESPONSIVE_TICK_MS);
      last = now;
      if (counted >= ms || now - started >= maxMs) resolve();
    }, RESPONSIVE_TICK_MS);
  });
  return { done: done.finally(() => clearInterval(timer)), cancel: () => clearInterval(timer) };
}

const RESPONSIVE_TICK_MS = 25;

/** A transaction's connection that runs no statement once its request has failed. */
function guardedTransaction(tx: TransactionSql, refuseIfFailed: () => void): TransactionSql {
  return new Proxy(tx, {
    get(target, prop) {
      if (prop === 'unsafe')
        return (...args: Parameters<TransactionSql['unsafe']>) => {
          refuseIfFailed();
          return target.unsafe(...args);
        };
      if (prop === 'savepoint')
        return (body: (sp: TransactionSql) => unknown) =>
          target.savepoint((sp) => body(guardedTransaction(sp, refuseIfFailed)));
      const value = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * What `unsafe()` returns to drizzle for a request's statement: awaitable, with `.values()`, and
 * started only when awaited (as postgres.js queries are).
 */
class GuardedStatement<T> implements PromiseLike<T> {
  private valuesOnly = false;
  private started?: Promise<T>;

  constructor(private readonly start: (values: boolean) => Promise<T>) {}

  values(): this {
    this.valuesOnly = true;
    return this;
  }

  // biome-ignore lint/suspicious/noThenProperty: it is awaited like the driver's own query object
  then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.started ??= this.start(this.valuesOnly);
    return this.started.then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.then(undefined, onRejected);
  }
}
