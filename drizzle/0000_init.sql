CREATE TABLE "events" (
	"kf_id" text PRIMARY KEY NOT NULL,
	"event_type" text NOT NULL,
	"message" text NOT NULL,
	"release_id" text,
	"task_service_id" text,
	"task_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" text PRIMARY KEY NOT NULL,
	"seq" bigserial NOT NULL,
	"subject" text NOT NULL,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "processed_messages" (
	"id" text PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "release_notes" (
	"kf_id" text PRIMARY KEY NOT NULL,
	"description" text NOT NULL,
	"author" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"release_id" text NOT NULL,
	"study_id" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "release_studies" (
	"release_id" text NOT NULL,
	"study_id" text NOT NULL,
	CONSTRAINT "release_studies_release_id_study_id_pk" PRIMARY KEY("release_id","study_id")
);
--> statement-breakpoint
CREATE TABLE "releases" (
	"kf_id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"state" text NOT NULL,
	"version" text NOT NULL,
	"is_major" boolean DEFAULT false NOT NULL,
	"tags" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"author" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL,
	"halt_reason" text,
	"idempotency_key" text,
	"state_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deadline_at" timestamp with time zone,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "studies" (
	"kf_id" text PRIMARY KEY NOT NULL,
	"name" text DEFAULT '' NOT NULL,
	"visible" boolean DEFAULT true NOT NULL,
	"deleted" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "task_services" (
	"kf_id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"url" text NOT NULL,
	"author" text DEFAULT '' NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"last_ok_status" integer DEFAULT 0 NOT NULL,
	"health_status" text DEFAULT 'ok' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"next_health_at" timestamp with time zone,
	"deleted" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tasks" (
	"kf_id" text PRIMARY KEY NOT NULL,
	"release_id" text NOT NULL,
	"task_service_id" text NOT NULL,
	"state" text NOT NULL,
	"progress" real,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL,
	"awaiting" text,
	"awaiting_since" timestamp with time zone,
	"next_poll_at" timestamp with time zone,
	"poll_in_flight" boolean DEFAULT false NOT NULL,
	"progress_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "release_notes" ADD CONSTRAINT "release_notes_release_id_releases_kf_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("kf_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "release_notes" ADD CONSTRAINT "release_notes_study_id_studies_kf_id_fk" FOREIGN KEY ("study_id") REFERENCES "public"."studies"("kf_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "release_studies" ADD CONSTRAINT "release_studies_release_id_releases_kf_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("kf_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "release_studies" ADD CONSTRAINT "release_studies_study_id_studies_kf_id_fk" FOREIGN KEY ("study_id") REFERENCES "public"."studies"("kf_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_release_id_releases_kf_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("kf_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_task_service_id_task_services_kf_id_fk" FOREIGN KEY ("task_service_id") REFERENCES "public"."task_services"("kf_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "events_release" ON "events" USING btree ("release_id");--> statement-breakpoint
CREATE INDEX "events_task" ON "events" USING btree ("task_id");--> statement-breakpoint
CREATE INDEX "events_service" ON "events" USING btree ("task_service_id");--> statement-breakpoint
CREATE INDEX "events_seq" ON "events" USING btree ("seq");--> statement-breakpoint
CREATE INDEX "outbox_seq" ON "outbox" USING btree ("seq");--> statement-breakpoint
CREATE INDEX "release_studies_study" ON "release_studies" USING btree ("study_id");--> statement-breakpoint
CREATE UNIQUE INDEX "releases_idempotency_key" ON "releases" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "releases_state" ON "releases" USING btree ("state");--> statement-breakpoint
CREATE INDEX "releases_seq" ON "releases" USING btree ("seq");--> statement-breakpoint
CREATE INDEX "tasks_release" ON "tasks" USING btree ("release_id");--> statement-breakpoint
CREATE INDEX "tasks_service" ON "tasks" USING btree ("task_service_id");--> statement-breakpoint
CREATE INDEX "tasks_next_poll" ON "tasks" USING btree ("next_poll_at") WHERE next_poll_at is not null;