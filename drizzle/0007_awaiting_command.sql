ALTER TABLE "tasks" ADD COLUMN "awaiting_command" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "awaiting_marks" text;