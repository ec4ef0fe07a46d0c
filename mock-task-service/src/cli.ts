#!/usr/bin/env bun
/**
 * mock-task-service CLI.  Run: bun mock-task-service/src/cli.ts --services 3   (or: npm run mock -- --services 3)
 * Prints one line per service, "<name> <url>", then "# control <url>"; stops cleanly on SIGINT/SIGTERM.
 */
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import type { Behaviour, BehaviourTarget, Latency, TaskState } from './behaviour.ts';
import { TASK_STATES } from './behaviour.ts';
import { startMock } from './index.ts';
import { loadScenario, parseScenario, type Scenario, type ScenarioRule } from './scenario.ts';

export const USAGE = `Usage: bun mock-task-service/src/cli.ts [options]

A scriptable stand-in for release-coordinator task services (GET /status, POST /tasks).

Server
  --port N                     listen port (default 4001; 0 = random free port)
  --host ADDR                  listen address (default 127.0.0.1)
  --name NAME                  name of the root service served at / (default mock-task-service)
  --services N|a,b,c           named services under /s/<name>/; N gives svc-0..svc-(N-1)
  --scenario FILE              scenario JSON file (see README); flags override its fields
  --jwks-url URL               verify "Authorization: Bearer <JWT>" against this JWKS; 401 if invalid
  --jwt-audience AUD           expected JWT audience (any string, e.g. one an identity provider assigned)
  --jwt-claim NAME=VALUE       with --jwks-url: the JWT must carry this claim with this value, e.g.
                               gty=client-credentials (repeatable; 401 names what is missing)

Work
  --stage-ms MS                time from start to staged (default 50)
  --publish-ms MS              time from publish to published (default 50)
  --fail-after MS              tasks turn failed MS after start/publish
  --immediate                  start answers staged, publish answers published
  --reply-when-done            start/publish reply only when the work is done, with the final state

Callbacks (PATCH {coordinator-url}/tasks/{task_id} with {state, progress})
  --coordinator-url URL        base URL of the coordinator
  --callback MODE              never (default) | before (before the start/publish reply) | after
  --callback-token TOKEN       bearer token sent with callbacks
  --callback-auth bearer|none  none: callbacks carry no Authorization header (default bearer)

Misbehaviour
  --latency MS|MIN-MAX         delay every answer (fixed or random in a range)
  --status-latency MS|MIN-MAX  extra delay on GET /status only (slow status)
  --status up|down|flap        GET /status mode (down = 503; flap alternates ok/503)
  --flap-probability P         with --status flap: probability of a 503 instead of alternating
  --fail-action [SVC/]ACTION:CODE   answer CODE to ACTION, e.g. start:503 or svc-1/initialize:500 (repeatable)
  --hang [SVC/]ACTION|all      accept and never answer (repeatable; ACTION may be status)
  --drop [SVC/]ACTION|all      close the connection without an answer (repeatable)
  --drop-reply [SVC/]ACTION|all  do the action, then close the connection: the reply is lost (repeatable)
  --alias STATE=NAME           answer NAME for STATE, e.g. pending=initialized, canceled=cancelled (repeatable)
  --upper-case-states          answer STAGED, RUNNING, ...
  --progress FORM              int (default) | float | string ("50%") | null | missing
  --unknown-task-status CODE   answer for an unknown task (default 404; e.g. 400)
  --status-shape SHAPE         flat (default) | nested ({message:{name,version}}) | bare ({}) | text

  -h, --help                   print this help

Control API at <root url>/_control (GET calls|tasks|callbacks|behaviour|services|tasks-without-cancel,
POST behaviour|reset|forget|outage|restart). Outages and restarts: control API or scenario timeline.
`;

class UsageError extends Error {}

function int(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--${flag} needs a non-negative integer, got "${value}"`);
  return n;
}

function latency(flag: string, value: string): Latency {
  const m = /^(\d+)\s*-\s*(\d+)$/.exec(value);
  if (m) {
    const range: [number, number] = [Number(m[1]), Number(m[2])];
    if (range[0] > range[1]) throw new UsageError(`--${flag} range needs MIN <= MAX, got "${value}"`);
    return range;
  }
  return int(flag, value);
}

/** "[SVC/]ACTION" → rule target ('all' = every action, /status included). */
function target(flag: string, value: string): { service?: string; action?: BehaviourTarget } {
  const slash = value.indexOf('/');
  const service = slash >= 0 ? value.slice(0, slash) : undefined;
  const action = slash >= 0 ? value.slice(slash + 1) : value;
  if (action === 'all' || action === '') return { service };
  const actions = ['initialize', 'start', 'get_status', 'publish', 'cancel', 'status'];
  if (!actions.includes(action)) throw new UsageError(`--${flag}: unknown action "${action}"`);
  return { service, action: action as BehaviourTarget };
}

/** The flags, as node:util parseArgs takes them (USAGE describes each). */
const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  port: { type: 'string' },
  host: { type: 'string' },
  name: { type: 'string' },
  services: { type: 'string' },
  scenario: { type: 'string' },
  'jwks-url': { type: 'string' },
  'jwt-audience': { type: 'string' },
  'jwt-claim': { type: 'string', multiple: true },
  'stage-ms': { type: 'string' },
  'publish-ms': { type: 'string' },
  'fail-after': { type: 'string' },
  immediate: { type: 'boolean' },
  'reply-when-done': { type: 'boolean' },
  'coordinator-url': { type: 'string' },
  callback: { type: 'string' },
  'callback-token': { type: 'string' },
  'callback-auth': { type: 'string' },
  latency: { type: 'string' },
  'status-latency': { type: 'string' },
  status: { type: 'string' },
  'flap-probability': { type: 'string' },
  'fail-action': { type: 'string', multiple: true },
  hang: { type: 'string', multiple: true },
  drop: { type: 'string', multiple: true },
  'drop-reply': { type: 'string', multiple: true },
  alias: { type: 'string', multiple: true },
  'upper-case-states': { type: 'boolean' },
  progress: { type: 'string' },
  'unknown-task-status': { type: 'string' },
  'status-shape': { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

function parseFlags(argv: string[]) {
  return parseArgs({ args: argv, strict: true, allowPositionals: false, options: OPTIONS }).values;
}

type Flags = ReturnType<typeof parseFlags>;

/** Parses argv into mock options; throws UsageError on a bad flag. Returns null for --help. */
export async function optionsFromArgs(argv: string[]) {
  const values = parseFlags(argv);
  if (values.help) return null;
  const file: Scenario = values.scenario ? await loadScenario(values.scenario) : {};
  const scenario = scenarioFromFlags(values, file);
  const jwtRequiredClaims = requiredClaimsFrom(values);
  return {
    port: values.port === undefined ? 4001 : int('port', values.port),
    hostname: values.host ?? '127.0.0.1',
    jwksUrl: values['jwks-url'],
    jwtAudience: values['jwt-audience'],
    jwtRequiredClaims,
    scenario: parseScenario(scenario, 'options'),
  };
}

/** The scenario file with the flags applied over it. */
function scenarioFromFlags(values: Flags, file: Scenario): Scenario {
  const scenario: Scenario = {
    ...file,
    services: servicesFrom(values, file),
    behaviour: { ...file.behaviour, ...behaviourFrom(values, file) },
    rules: rulesFrom(values, file),
  };
  if (values.name !== undefined) scenario.name = values.name;
  if (values['stage-ms'] !== undefined) scenario.stageMs = int('stage-ms', values['stage-ms']);
  if (values['publish-ms'] !== undefined) scenario.publishMs = int('publish-ms', values['publish-ms']);
  if (values['coordinator-url'] !== undefined) scenario.coordinatorUrl = values['coordinator-url'];
  if (values['callback-token'] !== undefined) scenario.callbackToken = values['callback-token'];
  return scenario;
}

/** The behaviour every service gets from the flags (work, callbacks, misbehaviour). */
function behaviourFrom(values: Flags, file: Scenario): Partial<Behaviour> {
  const b: Partial<Behaviour> = {};
  if (values.latency !== undefined) b.latencyMs = latency('latency', values.latency);
  if (values['status-latency'] !== undefined)
    b.statusLatencyMs = latency('status-latency', values['status-latency']);
  if (values.status !== undefined) b.statusMode = values.status as Behaviour['statusMode'];
  if (values['flap-probability'] !== undefined) b.flapProbability = Number(values['flap-probability']);
  if (values['fail-after'] !== undefined) b.failAfterMs = int('fail-after', values['fail-after']);
  if (values.immediate) b.immediate = true;
  if (values['reply-when-done']) b.replyWhenDone = true;
  if (values.callback !== undefined) b.callback = values.callback as Behaviour['callback'];
  if (values['callback-auth'] !== undefined)
    b.callbackAuth = values['callback-auth'] as Behaviour['callbackAuth'];
  if (values['upper-case-states']) b.upperCaseStates = true;
  if (values.progress !== undefined) b.progressForm = values.progress as Behaviour['progressForm'];
  if (values['unknown-task-status'] !== undefined) {
    b.unknownTaskStatus = int('unknown-task-status', values['unknown-task-status']);
  }
  if (values['status-shape'] !== undefined)
    b.statusShape = values['status-shape'] as Behaviour['statusShape'];
  if (values.alias) b.stateAliases = aliasesFrom(values.alias, file);
  return b;
}

/** --alias STATE=NAME (repeatable), over the scenario file's aliases. */
function aliasesFrom(flags: string[], file: Scenario): Partial<Record<TaskState, string>> {
  const aliases: Partial<Record<TaskState, string>> = { ...file.behaviour?.stateAliases };
  for (const a of flags) {
    const [state, name] = a.split('=');
    if (!state || !name || !TASK_STATES.includes(state as TaskState)) {
      throw new UsageError(
        `--alias needs STATE=NAME with STATE one of ${TASK_STATES.join(', ')}, got "${a}"`,
      );
    }
    aliases[state as TaskState] = name;
  }
  return aliases;
}

/** The scenario file's rules, then --fail-action, --hang, --drop and --drop-reply. */
function rulesFrom(values: Flags, file: Scenario): ScenarioRule[] {
  const rules: ScenarioRule[] = [...(file.rules ?? [])];
  for (const f of values['fail-action'] ?? []) {
    const colon = f.lastIndexOf(':');
    if (colon < 0) throw new UsageError(`--fail-action needs [SVC/]ACTION:CODE, got "${f}"`);
    const t = target('fail-action', f.slice(0, colon));
    rules.push({ ...t, behaviour: { httpStatus: int('fail-action', f.slice(colon + 1)) } });
  }
  for (const h of values.hang ?? []) rules.push({ ...target('hang', h), behaviour: { hang: true } });
  for (const d of values.drop ?? []) rules.push({ ...target('drop', d), behaviour: { drop: true } });
  for (const d of values['drop-reply'] ?? []) {
    rules.push({ ...target('drop-reply', d), behaviour: { dropReply: true } });
  }
  return rules;
}

/** --services N|a,b,c, else the scenario file's. */
function servicesFrom(values: Flags, file: Scenario): Scenario['services'] {
  if (values.services === undefined) return file.services;
  if (/^\d+$/.test(values.services)) return Number(values.services);
  return values.services
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** --jwt-claim NAME=VALUE (repeatable; needs --jwks-url). */
function requiredClaimsFrom(values: Flags): Record<string, string> | undefined {
  const claims: Record<string, string> = {};
  for (const c of values['jwt-claim'] ?? []) {
    const eq = c.indexOf('=');
    if (eq <= 0) throw new UsageError(`--jwt-claim needs NAME=VALUE, got "${c}"`);
    claims[c.slice(0, eq)] = c.slice(eq + 1);
  }
  if (values['jwt-claim'] && !values['jwks-url']) throw new UsageError('--jwt-claim needs --jwks-url');
  return values['jwt-claim'] ? claims : undefined;
}

async function main(): Promise<void> {
  let options: Awaited<ReturnType<typeof optionsFromArgs>>;
  try {
    options = await optionsFromArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`mock-task-service: ${(e as Error).message}\nRun with --help for usage.\n`);
    process.exit(2);
  }
  if (options === null) {
    process.stdout.write(USAGE);
    return;
  }
  let mock: Awaited<ReturnType<typeof startMock>>;
  try {
    mock = await startMock(options);
  } catch (e) {
    process.stderr.write(`mock-task-service: cannot start: ${(e as Error).message}\n`);
    process.exit(1);
  }
  // Handlers first: whoever reads the URLs may signal at once.
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`mock-task-service: ${signal}, stopping\n`);
    mock.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  const lines = [`${mock.name} ${mock.url}`];
  for (const name of mock.serviceNames) lines.push(`${name} ${mock.serviceUrl(name)}`);
  lines.push(`# control ${mock.controlUrl}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (import.meta.main) await main();
