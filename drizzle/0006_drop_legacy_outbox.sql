-- The per-message outbox of versions that never shipped (every batch now writes one outbox_batches row).
-- Nothing reads it any more; a database that still holds rows in it held them only from development runs.
DROP TABLE IF EXISTS "outbox" CASCADE;
