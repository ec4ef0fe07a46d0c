CREATE TABLE "idempotency_keys" (
	"scope" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"resource_id" text,
	"response_status" integer,
	"response_body" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_scope_key_pk" PRIMARY KEY("scope","key")
);
--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "halt_task_id" text;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "halt_service_id" text;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "halt_service_name" text;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "halt_message" text;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "halted_by" text;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "halted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "published_by" text;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "publish_requested_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "states_at" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "task_services" ADD COLUMN "request_timeout_ms" integer;--> statement-breakpoint
ALTER TABLE "task_services" ADD COLUMN "start_timeout_ms" integer;--> statement-breakpoint
ALTER TABLE "task_services" ADD COLUMN "publish_timeout_ms" integer;--> statement-breakpoint
ALTER TABLE "task_services" ADD COLUMN "token_subject" text;--> statement-breakpoint
ALTER TABLE "task_services" ADD COLUMN "token_audience" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "awaiting_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "unconfirmed_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "unreachable_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "poll_delay_ms" integer;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "hinted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "states_at" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
CREATE INDEX "idempotency_keys_created" ON "idempotency_keys" USING btree ("created_at");--> statement-breakpoint
-- answers awaited before this version had no deadline column: give them the longest default one
UPDATE "tasks" SET "awaiting_until" = "awaiting_since" + interval '5 minutes' WHERE "awaiting" IS NOT NULL;
