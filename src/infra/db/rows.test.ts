import { describe, expect, test } from 'bun:test';
import { getTableColumns } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { idList, inIds, rowMapper } from './raw-select';
import { taskRecordOf } from './rows';
import { releases, tasks } from './schema';

/*
 * How raw rows become records, whichever driver returned them: postgres.js gives timestamps and
 * JSON as text (with drizzle's parsers: strings), PGlite gives Date objects and parsed JSON, and a
 * `real` may come as a number or a string.
 */

const dialect = new PgDialect();
const render = (q: Parameters<PgDialect['sqlToQuery']>[0]) => dialect.sqlToQuery(q);

describe('taskRecordOf', () => {
  const raw = {
    kf_id: 'TA_00000001',
    state: 'running',
    release_id: 'RE_00000001',
    task_service_id: 'TS_00000001',
    service_name: 'search-index',
  };

  test('postgres.js shape: text timestamp, numeric text progress, JSON object', () => {
    const record = taskRecordOf({
      ...raw,
      progress: '0.25',
      created_at: '2026-11-23 10:00:00.123+00',
      states_at: { waiting: '2026-11-23T10:00:00.123Z' },
    });
    expect(record).toEqual({
      kfId: 'TA_00000001',
      state: 'running',
      progress: 0.25,
      releaseId: 'RE_00000001',
      taskServiceId: 'TS_00000001',
      createdAt: new Date('2026-11-23T10:00:00.123Z'),
      serviceName: 'search-index',
      statesAt: { waiting: '2026-11-23T10:00:00.123Z' },
    });
  });

  test('PGlite shape: Date timestamp, number progress, JSON as text', () => {
    const record = taskRecordOf({
      ...raw,
      progress: 1,
      created_at: new Date('2026-11-23T10:00:00.000Z'),
      states_at: '{"running":"2026-11-23T10:00:01.000Z"}',
    });
    expect(record.createdAt).toEqual(new Date('2026-11-23T10:00:00.000Z'));
    expect(record.progress).toBe(1);
    expect(record.statesAt).toEqual({ running: '2026-11-23T10:00:01.000Z' });
  });

  test('no progress stays null (never 0); rows without states_at have none', () => {
    const record = taskRecordOf({ ...raw, progress: null, created_at: '2026-11-23T10:00:00Z' });
    expect(record.progress).toBeNull();
    expect(record.statesAt).toEqual({});
  });
});

describe('rowMapper', () => {
  test('selects every column of the table by its SQL name, optionally qualified', () => {
    const plain = render(rowMapper(tasks).columns).sql;
    expect(plain.startsWith('"kf_id", "release_id", "task_service_id", "state"')).toBe(true);
    expect(plain.split(', ')).toHaveLength(Object.keys(getTableColumns(tasks)).length);
    expect(render(rowMapper(releases, 'r').columns).sql).toStartWith('r."kf_id", r."name"');
  });

  test('maps SQL names to record keys with each column’s own conversion; null and missing are null', () => {
    const mapper = rowMapper(releases);
    const row = mapper.map({
      kf_id: 'RE_00000001',
      name: 'November',
      state: 'staged',
      is_major: false,
      tags: '["a","b"]',
      created_at: '2026-11-23 10:00:00+00',
      seq: '42',
      states_at: { waiting: '2026-11-23T10:00:00.000Z' },
      halt_reason: null,
    });
    expect(row.kfId).toBe('RE_00000001');
    expect(row.isMajor).toBe(false);
    expect(row.tags).toEqual(['a', 'b']);
    expect(row.createdAt).toEqual(new Date('2026-11-23T10:00:00.000Z'));
    expect(row.seq).toBe(42);
    expect(row.statesAt).toEqual({ waiting: '2026-11-23T10:00:00.000Z' });
    expect(row.haltReason).toBeNull();
    expect(row.publishedAt).toBeNull(); // not in the row at all
  });

  test('a Date from PGlite is kept as that instant', () => {
    const at = new Date('2026-11-23T10:00:00.000Z');
    expect(rowMapper(tasks).map({ created_at: at }).createdAt).toEqual(at);
  });
});

describe('id lists', () => {
  test('the statement text is the same whatever the number of ids (one prepared statement); the ids are one JSON parameter', () => {
    const one = render(idList(['a']));
    const three = render(idList(['a', 'b', 'c']));
    expect(three.sql).toBe(one.sql);
    expect(three.params).toEqual([JSON.stringify(['a', 'b', 'c'])]);
    expect(render(inIds(tasks.kfId, [])).sql).toBe(render(inIds(tasks.kfId, ['x', 'y'])).sql);
    expect(render(inIds(tasks.kfId, ['x'])).sql).toStartWith(
      '"tasks"."kf_id" in (select jsonb_array_elements_text(',
    );
  });
});
