CREATE TABLE "media_device_requests" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"box_id" integer NOT NULL,
	"action" text NOT NULL,
	"media_device_id" text NOT NULL,
	"name" text,
	"type" text,
	"url" text,
	"permission_id" text,
	"change_id" bigint NOT NULL,
	"requested_by" text,
	"requested_at" timestamp with time zone NOT NULL,
	CONSTRAINT "media_device_requests_action_check" CHECK ("media_device_requests"."action" in ('add', 'delete'))
);
--> statement-breakpoint
CREATE TABLE "rollout_targets" (
	"rollout_id" bigint NOT NULL,
	"box_id" integer NOT NULL,
	"position" integer NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"outcome" text,
	"change_id" bigint,
	"message" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "rollout_targets_rollout_id_box_id_pk" PRIMARY KEY("rollout_id","box_id"),
	CONSTRAINT "rollout_targets_state_check" CHECK ("rollout_targets"."state" in ('pending', 'running', 'applied', 'failed', 'cancelled'))
);
--> statement-breakpoint
CREATE TABLE "rollouts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"state" text NOT NULL,
	"settings" jsonb NOT NULL,
	"selection" jsonb NOT NULL,
	"concurrency" integer NOT NULL,
	"failure_threshold" integer NOT NULL,
	"failures_at_resume" integer DEFAULT 0 NOT NULL,
	"paused_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "rollouts_state_check" CHECK ("rollouts"."state" in ('running', 'paused', 'cancelled', 'completed')),
	CONSTRAINT "rollouts_limits_check" CHECK ("rollouts"."concurrency" >= 1 and "rollouts"."failure_threshold" >= 1)
);
--> statement-breakpoint
ALTER TABLE "box_config_changes" ADD COLUMN "action" text DEFAULT 'setconfigs' NOT NULL;--> statement-breakpoint
ALTER TABLE "box_config_changes" ADD COLUMN "rollout_id" bigint;--> statement-breakpoint
ALTER TABLE "boxes" ADD COLUMN "hardware_serial" text;--> statement-breakpoint
ALTER TABLE "boxes" ADD COLUMN "hardware_bound_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "boxes" ADD COLUMN "last_login_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "boxes" ADD COLUMN "last_login_address" text;--> statement-breakpoint
ALTER TABLE "media_device_requests" ADD CONSTRAINT "media_device_requests_box_id_boxes_id_fk" FOREIGN KEY ("box_id") REFERENCES "public"."boxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "media_device_requests" ADD CONSTRAINT "media_device_requests_change_id_box_config_changes_id_fk" FOREIGN KEY ("change_id") REFERENCES "public"."box_config_changes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollout_targets" ADD CONSTRAINT "rollout_targets_rollout_id_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."rollouts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollout_targets" ADD CONSTRAINT "rollout_targets_box_id_boxes_id_fk" FOREIGN KEY ("box_id") REFERENCES "public"."boxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollout_targets" ADD CONSTRAINT "rollout_targets_change_id_box_config_changes_id_fk" FOREIGN KEY ("change_id") REFERENCES "public"."box_config_changes"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "media_device_requests_box_idx" ON "media_device_requests" USING btree ("box_id","id");--> statement-breakpoint
CREATE INDEX "rollout_targets_state_idx" ON "rollout_targets" USING btree ("rollout_id","state","position");--> statement-breakpoint
CREATE INDEX "rollout_targets_running_idx" ON "rollout_targets" USING btree ("rollout_id","box_id") WHERE "rollout_targets"."state" = 'running';--> statement-breakpoint
CREATE INDEX "rollouts_open_idx" ON "rollouts" USING btree ("id") WHERE "rollouts"."state" in ('running', 'paused');--> statement-breakpoint
ALTER TABLE "box_config_changes" ADD CONSTRAINT "box_config_changes_action_check" CHECK ("box_config_changes"."action" in ('setconfigs', 'addmediadevice', 'deletemediadevice', 'rebind_hardware'));