/**
 * Outages: a service that is restarting (per service, for a while) and a restart of the whole
 * process (the listening socket closes, then listens again on the same port).
 */
import { z } from 'zod';

/** How one service behaves during `outage(service, ms, options)`. */
export interface OutageOptions {
  /**
   * Answer this code (500-599) with `{message}`, as a proxy in front of a restarting service does
   * (502, 503, 504). Omitted: the connection is reset without an answer.
   */
  httpStatus?: number;
  /** Forget the service's tasks when the outage begins (a restart that loses memory). */
  forget?: boolean;
}

/** How the whole process behaves during `restart(ms, options)`. */
export interface RestartOptions {
  /** Forget the tasks of every service (a restart that loses memory). */
  forget?: boolean;
}

/** Longest outage or restart window (keeps every timer within setTimeout's range). */
export const MAX_WINDOW_MS = 86_400_000;

const windowMs = z.number().int().min(0).max(MAX_WINDOW_MS);

/** `{ms, httpStatus?, forget?}`: scenario timeline steps and POST /_control/outage. */
export const outageSchema = z.strictObject({
  ms: windowMs,
  httpStatus: z.number().int().min(500).max(599).optional(),
  forget: z.boolean().optional(),
});

/** `{ms, forget?}`: scenario timeline steps and POST /_control/restart. */
export const restartSchema = z.strictObject({
  ms: windowMs,
  forget: z.boolean().optional(),
});

/** Throws unless ms is a whole number of milliseconds within the allowed window. */
export function checkWindow(what: string, ms: number): void {
  if (!windowMs.safeParse(ms).success) {
    throw new Error(`${what} needs ms as an integer from 0 to ${MAX_WINDOW_MS}, got ${ms}`);
  }
}

/** Throws unless the outage answer is a 5xx code (or omitted). */
export function checkOutageStatus(httpStatus: number | undefined): void {
  if (httpStatus !== undefined && !outageSchema.shape.httpStatus.safeParse(httpStatus).success) {
    throw new Error(`outage httpStatus must be an integer from 500 to 599, got ${httpStatus}`);
  }
}

/** For restarts nobody awaits (control API, timeline): the mock stays down, so say why. */
export function reportRestartFailure(e: Error): void {
  process.stderr.write(`mock-task-service: restart failed: ${e.message}\n`);
}
