/**
 * The MockHandle startMock() returns: inspection (calls, callbacks, tasks), behaviour rules, and
 * outages, restarts and stop.
 */
import type { Behaviour, BehaviourTarget } from './behaviour.ts';
import { handleControl } from './control.ts';
import type { CallbackRecord, CallFilter, CallRecord, MockHandle, MockOptions, TaskView } from './index.ts';
import { checkOutageStatus, checkWindow, type OutageOptions, type RestartOptions } from './outage.ts';
import { isMockAction } from './requests.ts';
import { MockServer } from './server.ts';
import { interrupt, type MockState } from './state.ts';
import { advance, progressOf } from './tasks.ts';

export class Mock implements MockHandle {
  url: string;
  controlUrl: string;
  name: string;
  serviceNames: string[];
  calls: CallRecord[];
  callbacks: CallbackRecord[];
  private readonly server: MockServer;

  constructor(
    private readonly state: MockState,
    opts: MockOptions,
  ) {
    this.name = state.rootName;
    this.serviceNames = state.serviceNames;
    this.calls = state.calls;
    this.callbacks = state.callbacks;
    const controlApi = { handle: this, setRule: this.setRule.bind(this) };
    this.server = new MockServer(state, opts.hostname ?? '127.0.0.1', opts.port ?? 0, (req, sub) =>
      handleControl(req, sub, controlApi),
    );
    this.url = this.server.url;
    this.controlUrl = `${this.url}/_control`;
  }

  get callbackErrors(): number {
    return this.state.callbackErrors;
  }

  // --- inspection ---

  serviceUrl(name: string): string {
    this.state.requireService(name);
    return name === this.name ? this.url : `${this.url}/s/${encodeURIComponent(name)}`;
  }

  callsFor(filter: CallFilter): CallRecord[] {
    return this.calls.filter(
      (c) =>
        (filter.service === undefined || c.service === filter.service) &&
        (filter.action === undefined || c.action === filter.action) &&
        (filter.taskId === undefined || c.taskId === filter.taskId) &&
        (filter.releaseId === undefined || c.releaseId === filter.releaseId),
    );
  }

  tasksWithoutCancel(releaseId: string): Array<{ service: string; taskId: string }> {
    const sent = new Map<string, { service: string; taskId: string }>();
    const canceled = new Set<string>();
    for (const c of this.calls) {
      if (c.releaseId !== releaseId || c.taskId === undefined || c.action === 'invalid') continue;
      const key = `${c.service}\u0000${c.taskId}`;
      if (c.action === 'cancel') canceled.add(key);
      else if (!sent.has(key)) sent.set(key, { service: c.service, taskId: c.taskId });
    }
    return [...sent].filter(([key]) => !canceled.has(key)).map(([, task]) => task);
  }

  tasks(service?: string): TaskView[] {
    const now = Date.now();
    const out: TaskView[] = [];
    for (const s of this.state.servicesOf(service)) {
      for (const t of s.tasks.values()) {
        advance(t, now);
        out.push({
          service: s.name,
          kf_id: t.kf_id,
          release_id: t.release_id,
          state: t.state,
          progress: Math.floor(progressOf(t, now)),
          starts: t.starts,
        });
      }
    }
    return out;
  }

  // --- behaviour ---

  setBehaviour(b: Partial<Behaviour>, service?: string, action?: BehaviourTarget): void {
    if (service !== undefined) this.state.requireService(service);
    if (action !== undefined && action !== 'status' && !isMockAction(action)) {
      throw new Error(`unknown action: ${action}`);
    }
    this.state.book.set(b, service, action);
  }

  /** A rule from the control API (may be counted: `times`). */
  private setRule(b: Partial<Behaviour>, service?: string, action?: BehaviourTarget, times?: number): void {
    if (service !== undefined) this.state.requireService(service);
    this.state.book.set(b, service, action, times);
  }

  behaviourOf(service: string, action: BehaviourTarget): Behaviour {
    this.state.requireService(service);
    return this.state.book.peek(service, action);
  }

  reset(): void {
    const { state } = this;
    state.calls.length = 0;
    state.callbacks.length = 0;
    state.callbackErrors = 0;
    state.book.reset();
    state.loadCountedRules();
    for (const s of state.services.values()) {
      s.flap = 0;
      s.outageUntil = 0;
    }
  }

  forgetTasks(service?: string): void {
    for (const s of this.state.servicesOf(service)) s.tasks.clear();
  }

  // --- outages, restarts, stop ---

  outage(service: string | undefined, ms: number, options: OutageOptions = {}): void {
    checkWindow('outage', ms);
    checkOutageStatus(options.httpStatus);
    const list = this.state.servicesOf(service);
    const until = Date.now() + ms;
    for (const s of list) {
      s.outageUntil = ms > 0 ? until : 0;
      s.outageStatus = options.httpStatus ?? 0;
      if (options.forget) s.tasks.clear();
      if (ms > 0) interrupt(s);
    }
  }

  restart(ms: number, options: RestartOptions = {}): Promise<void> {
    checkWindow('restart', ms);
    if (this.state.stopSignal.aborted) return Promise.reject(new Error('the mock is stopped'));
    if (options.forget) this.forgetTasks();
    return this.server.restart(ms);
  }

  async stop(): Promise<void> {
    if (!this.state.stop()) return;
    await this.server.stop();
  }
}
