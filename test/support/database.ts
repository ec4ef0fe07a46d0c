import { createDatabase, type ScratchDatabase } from './harness';
import { testDatabaseName } from './run';

export { BASE_DATABASE_URL } from './harness';

/** A fresh database per test file, dropped afterwards, so files run in parallel and twice in a row. */
export function createTestDatabase(label: string): Promise<ScratchDatabase> {
  return createDatabase(testDatabaseName(label));
}
