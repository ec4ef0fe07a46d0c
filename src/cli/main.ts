#!/usr/bin/env bun
/**
 * `rc`: the command line of the Release Coordinator. One module per command group
 * (services, releases, events, studies); `http.ts` is the API client, `sse.ts` the event stream.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version';
import { addLeafOptions, addRootOptions } from './context';
import { CliError, EXIT, EXIT_CODES_HELP } from './errors';
import { registerEvents } from './events';
import { registerReleases } from './releases';
import { registerServices } from './services';
import { registerStudies } from './studies';
import { registerToken } from './token';

export function buildProgram(): Command {
  const program = new Command('rc')
    .description('Release Coordinator command line: task services, releases, events, studies and tokens.')
    .version(VERSION.version, '-V, --version')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP);
  addRootOptions(program);
  registerServices(program);
  registerReleases(program);
  registerEvents(program);
  registerStudies(program);
  registerToken(program);
  addLeafOptions(program);
  return program;
}

function wantsJson(program: Command, argv: string[]): boolean {
  return Boolean(program.opts().json) || argv.includes('--json');
}

/** Runs the command line; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (isClosedPipe(err)) return EXIT.ok;
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const json = wantsJson(program, argv);
    if (err instanceof CliError) {
      if (json)
        process.stderr.write(
          `${JSON.stringify({ error: { message: err.message, status: err.details.status ?? null, body: err.details.body ?? null } })}\n`,
        );
      else process.stderr.write(`rc: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`rc: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return EXIT.error;
  }
}

/** The reader went away (`rc events --follow | head`): nothing is wrong, nobody is left to tell. */
function isClosedPipe(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'EPIPE';
}

if (import.meta.main) {
  // an asynchronous write to a closed pipe fails here, a synchronous one (help text) in run()
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (err) => {
      if (isClosedPipe(err)) process.exit(EXIT.ok);
      throw err;
    });
  const code = await run(process.argv);
  process.exitCode = code;
  // anything still open (a kept-alive socket) must not hold the exit
  setTimeout(() => process.exit(code), 500).unref();
}
