/**
 * What a running mock knows: its services and their tasks, the behaviour rules, the requests it
 * received and the callbacks it sent, its timers, and whether it is in an outage or restarting.
 */
import { createTokenCheck, type TokenCheck } from './auth.ts';
import { type Behaviour, BehaviourBook, type BehaviourRule, DEFAULT_BEHAVIOUR } from './behaviour.ts';
import type { CallbackRecord, CallRecord, MockOptions } from './index.ts';
import { parseScenario, type Scenario } from './scenario.ts';
import type { Task } from './tasks.ts';

export interface Service {
  name: string;
  tasks: Map<string, Task>;
  flap: number;
  /** Date.now() until which the service is in an outage (0 = none). */
  outageUntil: number;
  /** Code answered during the outage; 0 = reset the connection. */
  outageStatus: number;
  /** Aborted when the service's requests in progress must end (outage, restart, stop). */
  interrupt: AbortController;
}

function newService(name: string): Service {
  return {
    name,
    tasks: new Map(),
    flap: 0,
    outageUntil: 0,
    outageStatus: 0,
    interrupt: new AbortController(),
  };
}

/** Ends the requests in progress at a service. */
export function interrupt(svc: Service): void {
  svc.interrupt.abort();
  svc.interrupt = new AbortController();
}

/** A restart of the whole process in progress. */
export interface Restarting {
  /** Date.now() when it listens again. */
  until: number;
  /** The socket is closed and the relisten timer armed. */
  closed: boolean;
  timer?: Timer;
  done: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}

export type Timer = ReturnType<typeof setTimeout>;

function serviceNamesFrom(services: number | string[] | undefined): string[] {
  if (services === undefined) return [];
  if (typeof services === 'number') return Array.from({ length: services }, (_, i) => `svc-${i}`);
  return [...services];
}

/**
 * The rules of the options and the scenario: static ones (always apply, in this order: scenario
 * defaults, option defaults, scenario per service, option per service, scenario rules) and
 * counted ones (scenario rules with `times`, loaded again on reset).
 */
function rulesFrom(
  opts: MockOptions,
  scenario: Scenario,
): { fixed: BehaviourRule[]; counted: BehaviourRule[] } {
  const fixed: BehaviourRule[] = [];
  if (scenario.behaviour) fixed.push({ behaviour: scenario.behaviour });
  if (opts.behaviour) fixed.push({ behaviour: opts.behaviour });
  for (const [service, b] of Object.entries(scenario.perService ?? {})) fixed.push({ service, behaviour: b });
  for (const [service, b] of Object.entries(opts.perService ?? {})) fixed.push({ service, behaviour: b });
  const counted: BehaviourRule[] = [];
  for (const r of scenario.rules ?? []) {
    if (r.times !== undefined) counted.push(r);
    else fixed.push({ service: r.service, action: r.action, behaviour: r.behaviour });
  }
  return { fixed, counted };
}

export class MockState {
  readonly scenario: Scenario;
  readonly rootName: string;
  /** Names of the named services (under /s/<name>/). */
  readonly serviceNames: string[];
  readonly root: Service;
  readonly services = new Map<string, Service>();
  /** Base URL for callbacks, without a trailing slash. */
  readonly coordinatorUrl: string | undefined;
  readonly callbackToken: string | undefined;
  /** Checks the bearer JWT of a request (null: no check). */
  readonly checkToken: TokenCheck | null;
  readonly book: BehaviourBook;
  private readonly countedRules: BehaviourRule[];
  readonly calls: CallRecord[] = [];
  readonly callbacks: CallbackRecord[] = [];
  callbackErrors = 0;
  private readonly maxCalls: number;
  /** Timers not tied to a request (callbacks 'after', timeline steps, restarts); stop() clears them. */
  private readonly timers = new Set<Timer>();
  private readonly stopController = new AbortController();
  readonly stopSignal = this.stopController.signal;
  /** Set while the whole process is restarting (from restart() until it listens again). */
  restarting: Restarting | null = null;

  constructor(opts: MockOptions) {
    const scenario = opts.scenario ? parseScenario(opts.scenario) : {};
    this.scenario = scenario;
    this.rootName = opts.name ?? scenario.name ?? 'mock-task-service';
    this.serviceNames = serviceNamesFrom(opts.services ?? scenario.services);
    this.coordinatorUrl = (opts.coordinatorUrl ?? scenario.coordinatorUrl)?.replace(/\/+$/, '');
    this.callbackToken = opts.callbackToken ?? scenario.callbackToken;
    this.maxCalls = opts.maxCalls ?? 100_000;
    if (opts.jwtRequiredClaims && !opts.jwksUrl) throw new Error('jwtRequiredClaims needs jwksUrl');

    this.root = this.addServices();
    const { fixed, counted } = rulesFrom(opts, scenario);
    this.checkRuleServices([...fixed, ...counted, ...(scenario.timeline ?? [])]);
    const base: Behaviour = {
      ...DEFAULT_BEHAVIOUR,
      stageMs: opts.stageMs ?? scenario.stageMs ?? DEFAULT_BEHAVIOUR.stageMs,
      publishMs: opts.publishMs ?? scenario.publishMs ?? DEFAULT_BEHAVIOUR.publishMs,
    };
    this.book = new BehaviourBook(base, fixed);
    this.countedRules = counted;
    this.loadCountedRules();

    this.checkToken = opts.jwksUrl
      ? createTokenCheck({
          jwksUrl: opts.jwksUrl,
          audience: opts.jwtAudience,
          requiredClaims: opts.jwtRequiredClaims,
        })
      : null;
  }

  /** Creates the root service and the named ones; returns the root. */
  private addServices(): Service {
    const root = newService(this.rootName);
    this.services.set(this.rootName, root);
    for (const n of this.serviceNames) {
      if (this.services.has(n)) throw new Error(`duplicate service name: ${n}`);
      this.services.set(n, newService(n));
    }
    return root;
  }

  private checkRuleServices(rules: Array<{ service?: string }>): void {
    for (const r of rules) if (r.service !== undefined) this.requireService(r.service);
  }

  /** (Re)loads the scenario's counted rules (`times`) into the behaviour book. */
  loadCountedRules(): void {
    for (const r of this.countedRules) this.book.set(r.behaviour, r.service, r.action, r.times);
  }

  requireService(name: string): Service {
    const s = this.services.get(name);
    if (!s) throw new Error(`unknown service: ${name}`);
    return s;
  }

  /** One service, or every service when `service` is undefined. */
  servicesOf(service: string | undefined): Service[] {
    return service === undefined ? [...this.services.values()] : [this.requireService(service)];
  }

  /** Appends a call record, dropping the oldest beyond maxCalls (in batches of a tenth). */
  record(rec: CallRecord): void {
    const calls = this.calls;
    calls.push(rec);
    if (calls.length > this.maxCalls + Math.ceil(this.maxCalls / 10)) {
      calls.splice(0, calls.length - this.maxCalls);
    }
  }

  /** Runs fn after ms on a timer that stop() clears. */
  later(ms: number, fn: () => void): Timer {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        fn();
      },
      Math.max(0, ms),
    );
    this.timers.add(t);
    return t;
  }

  cancelLater(t: Timer | undefined): void {
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(t);
  }

  /** Whether the service is in an outage now (clears an outage that has ended). */
  inOutage(svc: Service): boolean {
    if (svc.outageUntil === 0) return false;
    if (svc.outageUntil > Date.now()) return true;
    svc.outageUntil = 0;
    return false;
  }

  /** Until when the service cannot answer or call back (outage or process restart); 0 = available. */
  unavailableUntil(svc: Service): number {
    const until = Math.max(svc.outageUntil, this.restarting?.until ?? 0);
    return until > Date.now() ? until : 0;
  }

  /** Ends callbacks, timers and the requests in progress. Returns false if already stopped. */
  stop(): boolean {
    if (this.stopSignal.aborted) return false;
    this.stopController.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.services.values()) s.interrupt.abort();
    return true;
  }
}
