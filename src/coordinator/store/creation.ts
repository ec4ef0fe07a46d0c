import { sql } from 'drizzle-orm';
import type { Intent } from '../../infra/bus/messages';
import type { Tx } from '../../infra/db/client';
import { idList, mappedRows, rowMapper } from '../../infra/db/raw-select';
import { type DriverRow, queryRows } from '../../infra/db/rows';
import { type taskServices, tasks } from '../../infra/db/schema';
import { releaseRow } from './releases';

/** Serialises version assignment: two releases created at once never get the same version. */
const VERSION_LOCK = 72_610_002;

const taskRow = rowMapper(tasks);

export type NewReleaseInput = Extract<Intent, { type: 'release.create' }>['release'];

/** An enabled task service as release creation reads it: where to call it and its deadlines. */
export type ServiceRow = Pick<
  DriverRow<typeof taskServices>,
  | 'kf_id'
  | 'url'
  | 'name'
  | 'token_audience'
  | 'request_timeout_ms'
  | 'start_timeout_ms'
  | 'publish_timeout_ms'
>;

export type NewTask = { kfId: string; releaseId: string; taskServiceId: string; state: string };

/** The studies that exist, the latest version (under the version lock) and the enabled services. */
export async function readForCreate(tx: Tx, studyIds: string[]) {
  // reads in one round trip (pipelined in this order: the version lock is held before the latest version is
  // read). Every query here starts when it is called, so the array order is the order they run in.
  const [known, , latestRows, services] = await Promise.all([
    queryRows<{ kf_id: string }>(
      tx,
      sql`select kf_id from studies where kf_id in ${idList(studyIds)} and not deleted`,
    ),
    queryRows(tx, sql`select pg_advisory_xact_lock(${VERSION_LOCK})`),
    queryRows<{ version: string }>(tx, sql`select version from releases order by seq desc limit 1`),
    queryRows<ServiceRow>(
      tx,
      sql`select kf_id, url, name, token_audience, request_timeout_ms, start_timeout_ms, publish_timeout_ms
          from task_services where enabled and not deleted order by created_at`,
    ),
  ]);
  return { known, latestRows, services };
}

/** The release row, its studies and its tasks, written in one round trip. */
export function insertRelease(
  tx: Tx,
  r: NewReleaseInput,
  version: string,
  taskRows: NewTask[],
  releaseTimeoutMs: number,
) {
  // the release row first: the others reference it
  return Promise.all([
    mappedRows(
      tx,
      releaseRow,
      // deadline in database time, like the scheduler that compares it: a skewed process clock changes nothing
      sql`insert into releases
          (kf_id, name, description, state, version, is_major, tags, author, deadline_at, states_at)
        values (${r.kfId}, ${r.name}, ${r.description ?? ''}, 'waiting', ${version}, ${r.isMajor ?? false},
          ${JSON.stringify(r.tags ?? [])}::jsonb, ${r.author ?? ''},
          now() + ${releaseTimeoutMs}::float8 * interval '1 millisecond', jsonb_build_object('waiting', now()))
        returning ${releaseRow.columns}`,
    ),
    queryRows(
      tx,
      sql`insert into release_studies (release_id, study_id)
        select ${r.kfId}, jsonb_array_elements_text(${JSON.stringify(r.studies)}::jsonb)`,
    ),
    taskRows.length > 0
      ? mappedRows(
          tx,
          taskRow,
          sql`insert into tasks (kf_id, release_id, task_service_id, state, states_at)
            select "kfId", "releaseId", "taskServiceId", state, jsonb_build_object('waiting', now())
            from jsonb_to_recordset(${JSON.stringify(taskRows)}::jsonb)
              as x("kfId" text, "releaseId" text, "taskServiceId" text, state text)
            returning ${taskRow.columns}`,
        )
      : Promise.resolve([]),
  ]);
}
