import pino from 'pino';

export type Logger = pino.Logger;

const REDACT = [
  'token',
  'authorization',
  'headers.authorization',
  '*.token',
  '*.authorization',
  'req.headers.authorization',
];

/** JSON lines in production; readable lines in development when pino-pretty is installed. */
export async function createLogger(opts: {
  level: string;
  format?: 'json' | 'pretty';
  production: boolean;
  name?: string;
}) {
  const format = opts.format ?? (opts.production || !process.stdout.isTTY ? 'json' : 'pretty');
  const base = { level: opts.level, name: opts.name, redact: { paths: REDACT, censor: '[redacted]' } };
  if (format === 'pretty') {
    try {
      const { default: pretty } = await import('pino-pretty');
      return pino(base, pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }));
    } catch {
      // pino-pretty is a dev dependency; production images log JSON.
    }
  }
  return pino(base);
}
