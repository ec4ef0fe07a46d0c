import { type SQL, sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/** The unique indexes of task_services, by the field each keeps unique (a violation names the field). */
export const TASK_SERVICE_UNIQUE = { url: 'task_services_url_key', name: 'task_services_name' } as const;

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * A task-service URL as the registry compares URLs: scheme and host in lower case, the default
 * port (80 for http, 443 for https) dropped, trailing slashes dropped (RFC 3986, 6.2.2 and 6.2.3):
 * `HTTPS://Search.Example:443/svc/` and `https://search.example/svc` name one service. In SQL, so
 * that every row has it whoever writes it (the column below is generated from it).
 */
export const urlKeyOf = (url: SQL) =>
  sql`rtrim(coalesce(regexp_replace(regexp_replace(lower(substring(${url} from '^[^:/?#]+://[^/?#]*')), '^(http://.*):80$', '\\1'), '^(https://.*):443$', '\\1') || substring(${url} from '^[^:/?#]+://[^/?#]*(.*)$'), ${url}), '/')`;

export const taskServices = pgTable(
  'task_services',
  {
    kfId: text('kf_id').primaryKey(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    url: text('url').notNull(),
    /** `url` as compared for duplicates (urlKeyOf) */
    urlKey: text('url_key').generatedAlwaysAs(urlKeyOf(sql.raw('"url"'))),
    author: text('author').notNull().default(''),
    enabled: boolean('enabled').notNull().default(true),
    lastOkStatus: integer('last_ok_status').notNull().default(0),
    healthStatus: text('health_status').notNull().default('ok'),
    createdAt: createdAt(),
    nextHealthAt: ts('next_health_at'),
    deleted: boolean('deleted').notNull().default(false),
    /** per-service deadlines (ms) overriding REQUEST_TIMEOUT_MS / START_TIMEOUT_MS / PUBLISH_TIMEOUT_MS */
    requestTimeoutMs: integer('request_timeout_ms'),
    startTimeoutMs: integer('start_timeout_ms'),
    publishTimeoutMs: integer('publish_timeout_ms'),
    /** when set, only service tokens with this subject may report on this service's tasks */
    tokenSubject: text('token_subject'),
    /** audience of the tokens sent to this service (default: its URL, or OAUTH_AUDIENCE) */
    tokenAudience: text('token_audience'),
  },
  (t) => [
    // one enabled service per URL and per name: each would give every release a task of its own
    uniqueIndex(TASK_SERVICE_UNIQUE.url).on(t.urlKey).where(sql`enabled and not deleted`),
    uniqueIndex(TASK_SERVICE_UNIQUE.name).on(t.name).where(sql`enabled and not deleted`),
  ],
);

export const studies = pgTable('studies', {
  kfId: text('kf_id').primaryKey(),
  name: text('name').notNull().default(''),
  visible: boolean('visible').notNull().default(true),
  deleted: boolean('deleted').notNull().default(false),
  createdAt: createdAt(),
});

export const releases = pgTable(
  'releases',
  {
    kfId: text('kf_id').primaryKey(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    state: text('state').notNull(),
    version: text('version').notNull(),
    isMajor: boolean('is_major').notNull().default(false),
    tags: jsonb('tags').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    author: text('author').notNull().default(''),
    createdAt: createdAt(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    /** why the release entered canceling: 'cancel' ends canceled, 'fail' ends failed */
    haltReason: text('halt_reason'),
    /** what halted it: the task and its service (when one did), the message, who asked, when */
    haltTaskId: text('halt_task_id'),
    haltServiceId: text('halt_service_id'),
    haltServiceName: text('halt_service_name'),
    haltMessage: text('halt_message'),
    haltedBy: text('halted_by'),
    haltedAt: ts('halted_at'),
    /** who asked to publish it, and when */
    publishedBy: text('published_by'),
    publishRequestedAt: ts('publish_requested_at'),
    /** when the release first entered each state: { "running": "2026-…Z", … } */
    statesAt: jsonb('states_at').$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
    stateChangedAt: ts('state_changed_at').notNull().defaultNow(),
    deadlineAt: ts('deadline_at'),
    publishedAt: ts('published_at'),
  },
  (t) => [index('releases_state').on(t.state), index('releases_seq').on(t.seq)],
);

export const releaseStudies = pgTable(
  'release_studies',
  {
    releaseId: text('release_id')
      .notNull()
      .references(() => releases.kfId),
    studyId: text('study_id')
      .notNull()
      .references(() => studies.kfId),
  },
  (t) => [primaryKey({ columns: [t.releaseId, t.studyId] }), index('release_studies_study').on(t.studyId)],
);

export const tasks = pgTable(
  'tasks',
  {
    kfId: text('kf_id').primaryKey(),
    releaseId: text('release_id')
      .notNull()
      .references(() => releases.kfId),
    taskServiceId: text('task_service_id')
      .notNull()
      .references(() => taskServices.kfId),
    state: text('state').notNull(),
    progress: real('progress'),
    createdAt: createdAt(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    /** the action whose answer the lifecycle is waiting for (initialize/start/publish/cancel) */
    awaiting: text('awaiting'),
    awaitingSince: ts('awaiting_since'),
    nextPollAt: ts('next_poll_at'),
    pollInFlight: boolean('poll_in_flight').notNull().default(false),
    progressAt: ts('progress_at').notNull().defaultNow(),
    /** the awaited answer counts as lost after this (the action's deadline plus a margin) */
    awaitingUntil: ts('awaiting_until'),
    /**
     * id of the start/publish command whose answer is awaited, and the creation time of the
     * sent-marks bucket it was sent under: with both, a command lost from NATS is proven never sent
     * (and is sent again) or may have been sent (its outcome is found by polling)
     */
    awaitingCommand: text('awaiting_command'),
    awaitingMarks: text('awaiting_marks'),
    /**
     * a start or publish got no answer: its outcome is unknown until a poll shows the work; a poll
     * still showing the earlier state after this time means the action did not take
     */
    unconfirmedUntil: ts('unconfirmed_until'),
    /** first unanswered poll of the current outage of the task's service (null when it answers) */
    unreachableSince: ts('unreachable_since'),
    /** current adaptive poll interval: short after start/publish, doubling up to POLL_INTERVAL_MS */
    pollDelayMs: integer('poll_delay_ms'),
    /** last credential-less callback taken as a hint to poll */
    hintedAt: ts('hinted_at'),
    /** when the task first entered each state: { "running": "2026-…Z", … } */
    statesAt: jsonb('states_at').$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
  },
  (t) => [
    index('tasks_release').on(t.releaseId),
    index('tasks_service').on(t.taskServiceId),
    index('tasks_next_poll').on(t.nextPollAt).where(sql`next_poll_at is not null`),
  ],
);

export const events = pgTable(
  'events',
  {
    kfId: text('kf_id').primaryKey(),
    eventType: text('event_type').notNull(),
    message: text('message').notNull(),
    releaseId: text('release_id'),
    taskServiceId: text('task_service_id'),
    taskId: text('task_id'),
    createdAt: createdAt(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
  },
  (t) => [
    index('events_release').on(t.releaseId),
    index('events_task').on(t.taskId),
    index('events_service').on(t.taskServiceId),
    index('events_seq').on(t.seq),
  ],
);

export const releaseNotes = pgTable('release_notes', {
  kfId: text('kf_id').primaryKey(),
  description: text('description').notNull(),
  author: text('author').notNull().default(''),
  createdAt: createdAt(),
  releaseId: text('release_id')
    .notNull()
    .references(() => releases.kfId),
  studyId: text('study_id')
    .notNull()
    .references(() => studies.kfId),
});

/**
 * What callers asked of releases (create, cancel, publish): stored by the gateway before anything
 * is sent on NATS, so Postgres, not the bus, is the record that a request was accepted. NATS only
 * brings an intent to the coordinator quickly; one the bus lost is found here by the coordinator's
 * sweep (docs/architecture.md, "What may be lost on the bus"). The coordinator writes its answer
 * (`reply`) in the transaction that applies the intent.
 */
export const intents = pgTable(
  'intents',
  {
    id: text('id').primaryKey(),
    type: text('type').notNull(),
    releaseId: text('release_id').notNull(),
    /** the intent as sent on NATS */
    body: jsonb('body').notNull(),
    /** Idempotency-Key of a create, with who sent it (keys are per caller) and a hash of the request */
    caller: text('caller'),
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
    createdAt: createdAt(),
    appliedAt: ts('applied_at'),
    reply: jsonb('reply').$type<{ status: number; body: unknown }>(),
  },
  (t) => [
    uniqueIndex('intents_key').on(t.type, t.caller, t.idempotencyKey).where(sql`idempotency_key is not null`),
    index('intents_unapplied').on(t.createdAt).where(sql`applied_at is null`),
  ],
);

/** Message ids already applied; written in the same transaction as the state change they caused. */
export const processedMessages = pgTable(
  'processed_messages',
  {
    id: text('id').primaryKey(),
    processedAt: createdAt(),
  },
  // the coordinator's housekeeping forgets old ids by age
  (t) => [index('processed_messages_created').on(t.processedAt)],
);

/**
 * Messages to publish after commit (commands to workers, notifications), one row per applied
 * batch: `messages` is the JSON array of the batch's `{ id, subject, payload }`. A relay publishes
 * and deletes them, so a crash between commit and publish loses nothing. One small insert and one
 * delete per transaction instead of a row per message; text, not jsonb, because it is only ever
 * read back whole by the relay.
 */
export const outboxBatches = pgTable(
  'outbox_batches',
  {
    id: text('id').primaryKey(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    messages: text('messages').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('outbox_batches_seq').on(t.seq)],
);

/**
 * Idempotency-Key of creating requests (POST /task-services, /studies, /release-notes): the key is
 * reserved in the transaction that creates the record, so a retry (or a concurrent twin) gets the
 * same record. Owned by the gateway (these are not release or task state).
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    scope: text('scope').notNull(),
    key: text('key').notNull(),
    /** hash of the request body: the same key with another body is refused */
    requestHash: text('request_hash').notNull(),
    resourceId: text('resource_id'),
    responseStatus: integer('response_status'),
    responseBody: jsonb('response_body'),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index('idempotency_keys_created').on(t.createdAt)],
);

/** The key that signs tokens sent to task services, when none is configured (SIGNING_KEY). */
export const signingKeys = pgTable('signing_keys', {
  kid: text('kid').primaryKey(),
  alg: text('alg').notNull(),
  privateJwk: jsonb('private_jwk').notNull(),
  publicJwk: jsonb('public_jwk').notNull(),
  createdAt: createdAt(),
});
