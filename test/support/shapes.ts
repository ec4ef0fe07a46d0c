/** The fields of each resource in the order the API gives them (docs/api.md). */

export const RELEASE_FIELDS = [
  'kf_id',
  'name',
  'description',
  'notes',
  'state',
  'studies',
  'tasks',
  'version',
  'created_at',
  'tags',
  'author',
  'is_major',
  'halt',
  'published_by',
  'publish_requested_at',
  'published_at',
  'states_at',
];

export const TASK_FIELDS = [
  'kf_id',
  'state',
  'progress',
  'release',
  'task_service',
  'created_at',
  'service_name',
  'states_at',
];

export const TASK_SERVICE_FIELDS = [
  'kf_id',
  'name',
  'description',
  'last_ok_status',
  'author',
  'health_status',
  'url',
  'created_at',
  'enabled',
  'request_timeout_ms',
  'start_timeout_ms',
  'publish_timeout_ms',
  'token_subject',
  'token_audience',
];
