/**
 * Exit codes of `rc` (documented in `rc --help` and the README):
 * 0 ok; 1 the coordinator refused or could not be reached (or a service check found it down);
 * 2 bad usage; `releases watch`: 3 the release failed, 4 it was canceled.
 */
export const EXIT = { ok: 0, error: 1, usage: 2, failed: 3, canceled: 4, sigint: 130, sigterm: 143 } as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  ok (releases watch: the release is staged or published)
  1  the coordinator answered an error or could not be reached; services check: the service is down
  2  bad usage (unknown command or option, missing argument, bad value)
  3  releases watch: the release failed
  4  releases watch: the release was canceled

Environment:
  RC_URL    coordinator base URL (or --url; default http://localhost:3000)
  RC_TOKEN  bearer token (JWT) sent with every request (or --token); writes need one`;

/** An error with the message to show and the exit code to end with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
    readonly details: { status?: number; body?: unknown; retryable?: boolean } = {},
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage);
}
