-- Intents (create, cancel, publish of releases) are stored in Postgres by the gateway before they
-- are sent on NATS: the bus may lose messages, Postgres is the record. Idempotency-Keys of release
-- creates move here, per caller. Keys stored on releases by earlier versions are dropped: they
-- only protect retries of the last minutes, and they were not per caller.
CREATE TABLE "intents" (
	"id" text PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"release_id" text NOT NULL,
	"body" jsonb NOT NULL,
	"caller" text,
	"idempotency_key" text,
	"request_hash" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"applied_at" timestamp with time zone,
	"reply" jsonb
);
--> statement-breakpoint
DROP INDEX "releases_idempotency_key";--> statement-breakpoint
CREATE UNIQUE INDEX "intents_key" ON "intents" USING btree ("type","caller","idempotency_key") WHERE idempotency_key is not null;--> statement-breakpoint
CREATE INDEX "intents_unapplied" ON "intents" USING btree ("created_at") WHERE applied_at is null;--> statement-breakpoint
CREATE INDEX "processed_messages_created" ON "processed_messages" USING btree ("created_at");--> statement-breakpoint
ALTER TABLE "releases" DROP COLUMN "idempotency_key";