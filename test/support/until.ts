/** Waits for a condition with a deadline (never a fixed sleep); returns the truthy value. */
export async function until<T>(
  check: () => T | Promise<T>,
  opts: {
    timeoutMs?: number;
    intervalMs?: number;
    message?: string;
    /** an exception from `check` ends the wait at once (default: it counts as not yet) */
    failFast?: boolean;
  } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (err) {
      if (opts.failFast) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 10));
  }
  throw new Error(
    `timed out after ${opts.timeoutMs ?? 10_000} ms: ${opts.message ?? 'condition not met'} (last: ${String(last)})`,
  );
}
