/**
 * A process that owns an embedded nats-server, for the test that kills it with -9:
 * `bun test/support/embedded-nats-parent.ts <port> <dataDir>` prints `ready <supervisor pid>` once connected.
 */
import { connectBus } from '../../src/infra/bus/connection';
import { createLogger } from '../../src/infra/logger';

const [port, dataDir] = process.argv.slice(2);
const log = await createLogger({ level: 'silent', format: 'json', production: false });
const bus = await connectBus({
  dataDir: dataDir!,
  log,
  name: 'parent',
  defaultUrl: `nats://127.0.0.1:${port}`,
});
console.log(`ready ${bus.embedded?.pid}`);
setInterval(() => {}, 60_000);
