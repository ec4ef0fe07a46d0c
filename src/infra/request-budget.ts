import { AsyncLocalStorage } from 'node:async_hooks';

/** Why a request was abandoned when its caller hung up: nobody is left to answer. */
export class CallerGone extends Error {
  override readonly name = 'CallerGone';
  constructor() {
    super('the caller closed the connection');
  }
}

/**
 * The time one request may take, and whether it was already answered without its work. Set by the
 * gateway's deadline middleware around each request; the database guard and the intent client read
 * it from the async context, so every statement and publish of a request is bounded by it and
 * nothing starts (or commits) once the caller was told the request failed.
 */
export class RequestBudget {
  private readonly deadline: number;
  private abandonedWith?: Error;
  private readonly onAbandon = new Set<(reason: Error) => void>();

  constructor(readonly totalMs: number) {
    this.deadline = performance.now() + totalMs;
  }

  remainingMs(): number {
    return Math.max(0, this.deadline - performance.now());
  }

  /** the request was answered with an error: its remaining work must not take effect */
  get abandoned(): Error | undefined {
    return this.abandonedWith;
  }

  abandon(reason: Error) {
    if (this.abandonedWith) return;
    this.abandonedWith = reason;
    for (const hook of this.onAbandon) hook(reason);
    this.onAbandon.clear();
  }

  /** calls `hook` when the request is abandoned; returns the function that forgets it */
  whenAbandoned(hook: (reason: Error) => void): () => void {
    if (this.abandonedWith) {
      hook(this.abandonedWith);
      return () => {};
    }
    this.onAbandon.add(hook);
    return () => this.onAbandon.delete(hook);
  }
}

const storage = new AsyncLocalStorage<RequestBudget>();

/** The budget of the request being served, if any (background work has none). */
export const currentBudget = (): RequestBudget | undefined => storage.getStore();

export const withBudget = <T>(budget: RequestBudget, run: () => T): T => storage.run(budget, run);
