import type { FC } from 'hono/jsx';

/** Small pieces shared by the dashboard's pages. */

const utc = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

/** A time in UTC; the script shows it in the reader's time zone. */
export const Time: FC<{ at: Date | null | undefined; empty?: string }> = ({ at, empty }) =>
  at ? <time datetime={at.toISOString()}>{utc(at)}</time> : <span class="muted">{empty ?? '—'}</span>;

export const StateBadge: FC<{ state: string; id?: string }> = ({ state, id }) => (
  <span id={id} class={`badge state-${state}`} data-state={state}>
    {state}
  </span>
);
