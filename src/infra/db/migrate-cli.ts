import { loadConfig } from '../../config';
import { openDatabase } from './client';

// `npm run db:migrate` and the Fly release_command: apply migrations and exit.
const config = loadConfig();
const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 1 });
await database.migrate();
console.log(`migrations applied (${database.kind})`);
await database.close();
