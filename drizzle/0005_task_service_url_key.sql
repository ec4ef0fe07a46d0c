-- One enabled task service per URL and per name, held by unique indexes: before, the gateway
-- checked for a twin and then inserted, so two registrations at the same moment both got in, and
-- every later release got a task at each copy. url_key is the URL as compared (scheme and host in
-- lower case, default port and trailing slashes dropped; schema.ts urlKeyOf).
-- Twins registered before this migration must not make it fail: of the enabled services sharing
-- a URL, the oldest stays enabled and the others are disabled (they were the same service: each
-- release called it twice); of those sharing a name (but not a URL), the newer ones get their
-- kf_id appended to the name and stay enabled.
ALTER TABLE "task_services" ADD COLUMN "url_key" text GENERATED ALWAYS AS (rtrim(coalesce(regexp_replace(regexp_replace(lower(substring("url" from '^[^:/?#]+://[^/?#]*')), '^(http://.*):80$', '\1'), '^(https://.*):443$', '\1') || substring("url" from '^[^:/?#]+://[^/?#]*(.*)$'), "url"), '/')) STORED;--> statement-breakpoint
UPDATE "task_services" AS t SET "enabled" = false
WHERE t.enabled AND NOT t.deleted AND EXISTS (
  SELECT 1 FROM "task_services" AS o
  WHERE o.enabled AND NOT o.deleted AND o.url_key = t.url_key
    AND (o.created_at, o.kf_id) < (t.created_at, t.kf_id)
);--> statement-breakpoint
UPDATE "task_services" AS t SET "name" = t.name || ' (' || t.kf_id || ')'
WHERE t.enabled AND NOT t.deleted AND EXISTS (
  SELECT 1 FROM "task_services" AS o
  WHERE o.enabled AND NOT o.deleted AND o.name = t.name
    AND (o.created_at, o.kf_id) < (t.created_at, t.kf_id)
);--> statement-breakpoint
CREATE UNIQUE INDEX "task_services_url_key" ON "task_services" USING btree ("url_key") WHERE enabled and not deleted;--> statement-breakpoint
CREATE UNIQUE INDEX "task_services_name" ON "task_services" USING btree ("name") WHERE enabled and not deleted;