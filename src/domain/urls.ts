/** ISO-8601 in UTC with `Z`, the only way the API writes a time (docs/api.md, "Conventions"). */
export function iso(d: Date | string): string;
export function iso(d: Date | string | null | undefined): string | null;
export function iso(d: Date | string | null | undefined): string | null {
  return d == null ? null : new Date(d).toISOString();
}

/** The absolute URL of a record of one collection: a string for an id, null for none. */
export interface RecordUrl {
  (id: string): string;
  (id: string | null | undefined): string | null;
}

/** Absolute URLs of records, under the coordinator's public base URL. */
export function urls(base: { PUBLIC_URL: string }) {
  const u = (collection: string): RecordUrl =>
    ((id: string | null | undefined) => (id ? `${base.PUBLIC_URL}/${collection}/${id}` : null)) as RecordUrl;
  return {
    release: u('releases'),
    task: u('tasks'),
    taskService: u('task-services'),
    event: u('events'),
    study: u('studies'),
    releaseNote: u('release-notes'),
  };
}
export type Urls = ReturnType<typeof urls>;
