import { describe, expect, test } from 'bun:test';
import { Hono } from 'hono';
import { CallerGone } from '../../infra/request-budget';
import { errorHandler } from './errors';

/** a logger that keeps what was logged, by level */
function recordingLog() {
  const lines: Array<{ level: string; msg: string }> = [];
  const at = (level: string) => (_obj: unknown, msg: string) => lines.push({ level, msg });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

describe('the error handler', () => {
  test('a request whose caller hung up is not an error: 499, logged at info, no health check', async () => {
    const { lines, log } = recordingLog();
    let healthAsked = false;
    const app = new Hono();
    app.onError(
      errorHandler(log as never, async () => {
        healthAsked = true;
        return { database: true, bus: true };
      }),
    );
    app.get('/gone', () => {
      // what drizzle throws when the guard fails a statement of an abandoned request
      throw new Error('Failed query: select 1', { cause: new CallerGone() });
    });
    const res = await app.request('/gone');
    expect(res.status).toBe(499);
    expect(lines).toEqual([{ level: 'info', msg: 'caller closed the connection before the answer' }]);
    expect(healthAsked).toBe(false);
  });

  test('an error nobody recognises is still a 500, logged as an error', async () => {
    const { lines, log } = recordingLog();
    const app = new Hono();
    app.onError(errorHandler(log as never, async () => ({ database: true, bus: true })));
    app.get('/boom', () => {
      throw new Error('boom');
    });
    expect((await app.request('/boom')).status).toBe(500);
    expect(lines.map((l) => l.level)).toEqual(['error']);
  });
});
