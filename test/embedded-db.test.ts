import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { type Database, openDatabase } from '../src/infra/db/client';
import { studies, taskServices } from '../src/infra/db/schema';

let dir: string;
let database: Database | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rc-embedded-db-'));
});
afterAll(async () => {
  await database?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded database (PGlite)', () => {
  test('openDatabase without a URL uses PGlite under the data directory', async () => {
    database = await openDatabase({ dataDir: dir });
    expect(database.kind).toBe('pglite');
    expect(existsSync(join(dir, 'pg'))).toBe(true);
    expect(await database.ping()).toBe(true);
  });

  test('migrate() works, and running it again is a no-op', async () => {
    await database!.migrate();
    await database!.migrate();
    const rows = await database!.db.select().from(studies);
    expect(rows).toEqual([]);
  });

  test('insert and select through Drizzle', async () => {
    const db = database!.db;
    await db.insert(studies).values({ kfId: 'SD_ABCDEFGH', name: 'embedded study' });
    await db.insert(taskServices).values({ kfId: 'TS_ABCDEFGH', name: 'svc', url: 'http://127.0.0.1:1/svc' });
    const [study] = await db.select().from(studies).where(eq(studies.kfId, 'SD_ABCDEFGH'));
    expect(study).toMatchObject({
      kfId: 'SD_ABCDEFGH',
      name: 'embedded study',
      visible: true,
      deleted: false,
    });
    expect(study!.createdAt).toBeInstanceOf(Date);
    const [service] = await db.select().from(taskServices);
    expect(service).toMatchObject({
      kfId: 'TS_ABCDEFGH',
      enabled: true,
      healthStatus: 'ok',
      lastOkStatus: 0,
    });
  });

  test('the data survives closing and reopening the directory', async () => {
    await database!.close();
    database = await openDatabase({ dataDir: dir });
    await database.migrate();
    const rows = await database.db.select({ kfId: studies.kfId }).from(studies);
    expect(rows).toEqual([{ kfId: 'SD_ABCDEFGH' }]);
  });
});
