import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { sql } from 'drizzle-orm';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { BusNames } from '../bus/subjects';
import type { Db } from '../db/client';
import { queryRows } from '../db/rows';

/**
 * Prometheus metrics of one process (GET /metrics). Counters and histograms are updated where
 * things happen; gauges that describe shared state (releases by state, poll backlog, service
 * health, consumer lag) are read from Postgres and NATS when scraped.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly transitions = new Counter({
    name: 'rc_transitions_total',
    help: 'Release and task state transitions applied by this coordinator',
    labelNames: ['entity', 'to'] as const,
    registers: [this.registry],
  });
  readonly batches = new Counter({
    name: 'rc_coordinator_batches_total',
    help: 'Transactions the coordinator applied (each covers many messages)',
    registers: [this.registry],
  });
  readonly messages = new Counter({
    name: 'rc_coordinator_messages_total',
    help: 'Messages the coordinator received, by outcome (applied, duplicate, failed, unreadable: items of a batch that could not be read)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly poisoned = new Counter({
    name: 'rc_coordinator_poison_messages_total',
    help: 'Messages the coordinator could not apply (failed alone, repeatedly, with Postgres answering): parked, not retried',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly calls = new Histogram({
    name: 'rc_task_service_call_seconds',
    help: 'Latency of calls to task services, by action and outcome',
    labelNames: ['action', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly httpRequests = new Histogram({
    name: 'rc_http_request_seconds',
    help: 'Gateway request latency, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });

  constructor() {
    try {
      collectDefaultMetrics({ register: this.registry, prefix: 'rc_' });
    } catch {
      // some runtimes lack parts of perf_hooks; the rest of the metrics still work
    }
  }

  /** Gauges read at scrape time from the shared state (only on processes that can see it). */
  observeSharedState(db: Db, nc: NatsConnection | undefined, names: BusNames) {
    const registry = this.registry;
    new Gauge({
      name: 'rc_releases',
      help: 'Releases by state',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const rows = await queryRows<{ state: string; n: number }>(
          db,
          sql`select state, count(*)::int as n from releases group by state`,
        ).catch(() => []);
        this.reset();
        for (const r of rows) this.set({ state: r.state }, Number(r.n));
      },
    });
    new Gauge({
      name: 'rc_poll_backlog',
      help: 'Task polls that are due now and not yet sent',
      registers: [registry],
      async collect() {
        const [row] = await queryRows<{ n: number }>(
          db,
          sql`select count(*)::int as n from tasks where next_poll_at <= now() and not poll_in_flight`,
        ).catch(() => []);
        this.set(Number(row?.n ?? 0));
      },
    });
    new Gauge({
      name: 'rc_task_service_up',
      help: 'Health of each enabled task service (1 ok, 0 down) and its consecutive failed checks',
      labelNames: ['service', 'name'] as const,
      registers: [registry],
      async collect() {
        const rows = await queryRows<{ kf_id: string; name: string; health_status: string }>(
          db,
          sql`select kf_id, name, health_status from task_services where enabled and not deleted`,
        ).catch(() => []);
        this.reset();
        for (const r of rows) this.set({ service: r.kf_id, name: r.name }, r.health_status === 'ok' ? 1 : 0);
      },
    });
    if (!nc) return;
    const consumers = [
      [names.streams.intents, names.consumers.coordinatorIntents],
      [names.streams.results, names.consumers.coordinatorResults],
      [names.streams.commands, names.consumers.workers],
    ] as const;
    new Gauge({
      name: 'rc_nats_consumer_pending',
      help: 'Messages waiting for a consumer (not yet delivered, and delivered but not acked)',
      labelNames: ['consumer', 'kind'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        try {
          const jsm = await jetstreamManager(nc);
          for (const [stream, durable] of consumers) {
            const info = await jsm.consumers.info(stream, durable).catch(() => undefined);
            if (!info) continue;
            this.set({ consumer: durable, kind: 'pending' }, info.num_pending);
            this.set({ consumer: durable, kind: 'unacked' }, info.num_ack_pending);
          }
        } catch {
          // NATS away: the gauge stays empty rather than failing the scrape
        }
      },
    });
  }

  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
