/**
 * Opens ten connections whose array-types query (postgres.js runs it first on a new connection) is
 * canceled by a 1 ms statement_timeout, then prints "survived". Unpatched, postgres.js 3.4.9 drops
 * that query's promise and the rejection ends the process (porsager/postgres#1192); see
 * patches/README.md. Run by test/postgres-guard.test.ts as a child process.
 */
import postgres from 'postgres';

const url = process.argv[2];
if (!url) throw new Error('usage: types-query-canceled.ts <database url>');
for (let i = 0; i < 10; i++) {
  const sql = postgres(url, { max: 1, connection: { statement_timeout: 1 }, onnotice() {} });
  await sql`select 1`.catch(() => {});
  await sql.end({ timeout: 0 });
}
// a dropped rejection surfaces after the query that triggered it: give it a turn to do so
await new Promise((resolve) => setTimeout(resolve, 100));
console.log('survived');
