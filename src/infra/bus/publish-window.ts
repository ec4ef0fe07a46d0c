import pMap from 'p-map';

/**
 * How many JetStream publishes may await their acks at once. A 1,000-task fan-out is 2,000 messages
 * (commands and notifications); holding every request (buffer, timer, promise) at the same time
 * costs memory for no gain in speed: the server acks in order anyway.
 */
export const PUBLISH_WINDOW = 256;

/** Runs `publish` for every item, at most PUBLISH_WINDOW at a time. */
export function publishWindowed<T>(
  items: readonly T[],
  publish: (item: T) => Promise<unknown>,
): Promise<unknown> {
  return pMap(items, publish, { concurrency: PUBLISH_WINDOW });
}
