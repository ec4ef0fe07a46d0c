CREATE TABLE "outbox_batches" (
	"id" text PRIMARY KEY NOT NULL,
	"seq" bigserial NOT NULL,
	"messages" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "outbox_batches_seq" ON "outbox_batches" USING btree ("seq");--> statement-breakpoint
-- read back whole and deleted within milliseconds: not worth compressing (pglz costs CPU on every batch)
ALTER TABLE "outbox_batches" ALTER COLUMN "messages" SET STORAGE EXTERNAL;
