import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const ms = (def: number) => z.coerce.number().int().min(1).default(def);

/**
 * The smallest ack wait (COMMAND_ACK_WAIT_MS, COORDINATOR_ACK_WAIT_MS) that works. It is derived
 * from what depends on it (src/timing.ts): each pull request of a worker or coordinator lives
 * min(5 s, ack wait), and NATS clients refuse pull requests under 1 s; a message's holder tells
 * NATS every third of the ack wait that it is still working, and at 1.5 s that heartbeat (500 ms)
 * still leaves room for a garbage collection or a busy event loop before NATS hands the message to
 * someone else. Below it a worker or coordinator would never attach to its consumer.
 */
export const MIN_ACK_WAIT_MS = 1_500;
const ackWait = (def: number) =>
  z.coerce
    .number()
    .int()
    .min(MIN_ACK_WAIT_MS, {
      error: `must be at least ${MIN_ACK_WAIT_MS} ms (pull requests live as long as the ack wait and NATS refuses them under 1 s; heartbeats come every third of it)`,
    })
    .default(def);

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** default: 0.0.0.0 with an identity provider (AUTH_JWKS_URL), else 127.0.0.1 (see loadConfig) */
  HOST: z.string().min(1).optional(),
  PUBLIC_URL: z.url().optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  /** one server, or several (a cluster) separated by commas: the client connects to any and fails over to the others */
  NATS_URL: z
    .string()
    .min(1)
    .refine(
      (v) => v.split(',').every((s) => s.trim().length > 0),
      'one server URL or several separated by commas, e.g. nats://n1:4222,nats://n2:4222 (an entry is empty)',
    )
    .optional(),
  /**
   * copies of every stream, consumer and KV bucket on a NATS cluster (3 on a three-node cluster,
   * surviving the loss of one node); 1 on a single server
   */
  NATS_REPLICAS: z.coerce
    .number({ error: 'a whole number from 1 to 5' })
    .int('a whole number from 1 to 5')
    .min(1, 'a whole number from 1 to 5 (1 on a single NATS server)')
    .max(5, 'a whole number from 1 to 5 (JetStream keeps at most 5 copies)')
    .default(1),
  NATS_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9_-]+$/, 'letters, digits, - and _ only (it names subjects and streams)')
    .default('rc'),
  /** one role, `all`, or a comma-separated list such as `gateway,worker` */
  ROLE: z
    .string()
    .regex(
      /^(all|gateway|coordinator|worker)(,(gateway|coordinator|worker))*$/,
      'all, gateway, coordinator, worker, or a comma-separated list of them',
    )
    .default('all'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  POLL_INTERVAL_MS: ms(30_000),
  POLL_JITTER: z.coerce.number().min(0).max(1).default(0.1),
  HEALTH_INTERVAL_MS: ms(30_000),
  HEALTH_FAILURE_THRESHOLD: z.coerce.number().int().min(1).default(3),
  /** deadline of initialize, get_status, cancel and GET /status calls */
  REQUEST_TIMEOUT_MS: ms(15_000),
  /** deadline of a start call (some services do all their work before they answer) */
  START_TIMEOUT_MS: ms(300_000),
  /** deadline of a publish call */
  PUBLISH_TIMEOUT_MS: ms(300_000),
  TASK_TIMEOUT_MS: ms(160_000_000),
  RELEASE_TIMEOUT_MS: ms(360_000_000),
  SCHEDULER_TICK_MS: ms(1_000),
  /** on SIGTERM: how long calls and requests in flight may take to finish (keep under the platform's kill timeout) */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(20_000),
  /** a command held this long by a worker that stopped answering (crashed) goes to another worker */
  COMMAND_ACK_WAIT_MS: ackWait(10_000),
  /**
   * while answers to commands this coordinator sent are outstanding, wait up to this long for more
   * of them before applying a batch, so one fan-out's answers share one transaction
   */
  COORDINATOR_GATHER_MS: z.coerce.number().min(0).max(100).default(5),
  /** same for intents and results held by a coordinator that stopped answering */
  COORDINATOR_ACK_WAIT_MS: ackWait(10_000),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(256),
  GATEWAY_REPLY_TIMEOUT_MS: ms(10_000),
  ALLOW_PRIVATE_SERVICE_URLS: bool.default(false),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
  /** Kids First data service to pull studies from (POST /studies/sync, and the schedule below) */
  DATASERVICE_URL: z.url().optional(),
  /** pull studies this often (0 = only on request) */
  STUDY_SYNC_INTERVAL_MS: z.coerce.number().int().min(0).default(0),
  // incoming tokens
  AUTH_JWKS_URL: z.url().optional(),
  AUTH_ISSUER: z.string().min(1).optional(),
  AUTH_AUDIENCE: z.string().min(1).optional(),
  AUTH_ROLES_CLAIM: z.string().min(1).default('https://kidsfirstdrc.org/roles'),
  AUTH_GROUPS_CLAIM: z.string().min(1).default('https://kidsfirstdrc.org/groups'),
  AUTH_USERNAME_CLAIM: z.string().min(1).default('preferred_username'),
  /** turns every check off; refused unless set explicitly, and loudly logged */
  AUTH_DISABLED: bool.default(false),
  /** GET routes need no token (as in the original) */
  PUBLIC_READS: bool.default(true),
  /** browser origins allowed to call /graphql with credentials (comma-separated, e.g. the release UI's); none by default */
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((o) => o.trim().replace(/\/+$/, ''))
        .filter(Boolean),
    )
    .pipe(
      z.array(
        z.url({
          protocol: /^https?$/,
          error: 'each origin must be an http(s) URL such as https://ui.example.org',
        }),
      ),
    ),
  // outgoing tokens (to task services)
  /** private key (JWK JSON or PKCS#8 PEM) signing tokens to task services; generated and kept in Postgres when unset */
  SIGNING_KEY: z.string().min(1).optional(),
  OUTBOUND_TOKEN_TTL_S: z.coerce.number().int().min(30).max(86_400).default(300),
  /**
   * extra claims of the tokens the coordinator signs for task services, as a JSON object, e.g.
   * {"gty":"client-credentials"} for a service that accepts only its identity provider's machine tokens
   */
  OUTBOUND_TOKEN_CLAIMS: z
    .string()
    .default('{}')
    .transform((v, ctx) => {
      try {
        const parsed = JSON.parse(v) as unknown;
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
          return parsed as Record<string, unknown>;
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object, e.g. {"gty":"client-credentials"}' });
      return z.NEVER;
    }),
  /** OAuth client-credentials endpoint: when set, task services get a token from it instead */
  OAUTH_TOKEN_URL: z.url().optional(),
  OAUTH_CLIENT_ID: z.string().min(1).optional(),
  OAUTH_CLIENT_SECRET: z.string().min(1).optional(),
  OAUTH_AUDIENCE: z.string().min(1).optional(),
  /**
   * how long a call to a task service waits for its OAuth token while the token endpoint is out of
   * reach (no answer, 5xx, 429); past it (or at once when the endpoint refuses, 4xx) the call is not sent
   */
  OAUTH_OUTAGE_TOLERANCE_MS: z.coerce.number().int().min(0).default(300_000),
});

export type Config = Omit<z.infer<typeof schema>, 'HOST'> & {
  HOST: string;
  PUBLIC_URL: string;
  /** PUBLIC_URL came from the environment (else it follows the port the gateway listens on) */
  publicUrlGiven: boolean;
};

export class ConfigError extends Error {}

/** Reads the environment once; a bad value throws ConfigError with one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    // never echo values that may carry credentials
    const secretive = /URL|KEY|SECRET|TOKEN|PASSWORD/.test(name);
    const shown = present[name] === undefined || secretive ? '' : ` (got ${JSON.stringify(present[name])})`;
    throw new ConfigError(`invalid configuration: ${name}: ${issue.message}${shown}`);
  }
  const c = parsed.data;
  return {
    ...c,
    // without an identity provider anyone who reaches the API can act on a local token: this machine only
    HOST: c.HOST ?? (c.AUTH_JWKS_URL ? '0.0.0.0' : '127.0.0.1'),
    PUBLIC_URL: (c.PUBLIC_URL ?? `http://localhost:${c.PORT}`).replace(/\/+$/, ''),
    publicUrlGiven: c.PUBLIC_URL !== undefined,
  };
}

/** A listen address or host name that only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\./.test(h);
}
