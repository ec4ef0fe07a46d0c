import type { Command } from 'commander';
import { ctxOf } from './context';
import { CliError, usageError } from './errors';

interface DevToken {
  token: string;
  kind: 'admin' | 'service';
  username: string;
  roles: string[];
  expires_in: number;
}

export function registerToken(program: Command): void {
  program
    .command('token')
    .description(
      'print a token on stdout: --dev asks a coordinator in development mode (no identity provider,\n' +
        'not production) on this machine for a 12-hour ADMIN token, --service for a task-service token\n' +
        '(for callbacks). e.g. export RC_TOKEN=$(rc token --dev)',
    )
    .option('--dev', 'a development token from the coordinator itself (POST /dev/token; this machine only)')
    .option('--service', 'a task-service token (PATCH /tasks/{id} callbacks) instead of an ADMIN one')
    .action(async (opts, cmd: Command) => {
      if (!opts.dev)
        throw usageError(
          'rc token prints development tokens only: add --dev. Outside development, get a token from your identity provider.',
        );
      const ctx = ctxOf(cmd);
      let token: DevToken;
      try {
        token = (await ctx.client.post<DevToken>('/dev/token', { kind: opts.service ? 'service' : 'admin' }))
          .body;
      } catch (err) {
        // the coordinator's own words say why (not in development, or not this machine)
        const body = err instanceof CliError ? (err.details.body as { detail?: unknown } | null) : null;
        if (err instanceof CliError && (err.details.status === 403 || err.details.status === 404)) {
          throw new CliError(
            typeof body?.detail === 'string'
              ? `${body.detail} (${ctx.client.base})`
              : `${ctx.client.base} hands out no development tokens.`,
            err.exitCode,
            err.details,
          );
        }
        throw err;
      }
      if (ctx.json) return ctx.out.printJson(token);
      ctx.out.line(token.token);
      if (ctx.out.isTTY)
        ctx.note(
          `(${token.kind === 'service' ? 'a task-service' : 'an ADMIN'} token for ${token.expires_in / 3600} h; ` +
            `keep it for later commands: export RC_TOKEN=$(rc token --dev${opts.service ? ' --service' : ''}))`,
        );
    });
}
