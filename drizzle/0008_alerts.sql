CREATE TABLE "alert_changes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"alert_id" bigint NOT NULL,
	"kind" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	CONSTRAINT "alert_changes_kind_check" CHECK ("alert_changes"."kind" in ('fired', 'acknowledged', 'resolved'))
);
--> statement-breakpoint
CREATE TABLE "alert_notifications" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"alert_id" bigint NOT NULL,
	"channel_id" integer NOT NULL,
	"kind" text NOT NULL,
	"idempotency_key" uuid DEFAULT gen_random_uuid() NOT NULL,
	"payload" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp with time zone,
	"last_error" text,
	CONSTRAINT "alert_notifications_kind_check" CHECK ("alert_notifications"."kind" in ('fired', 'acknowledged', 'resolved', 'repeat')),
	CONSTRAINT "alert_notifications_status_check" CHECK ("alert_notifications"."status" in ('pending', 'delivered', 'dead'))
);
--> statement-breakpoint
CREATE TABLE "alert_pending" (
	"rule_id" integer NOT NULL,
	"subject" text NOT NULL,
	"since" timestamp with time zone NOT NULL,
	CONSTRAINT "alert_pending_pkey" PRIMARY KEY("rule_id","subject")
);
--> statement-breakpoint
CREATE TABLE "alert_rule_channels" (
	"rule_id" integer NOT NULL,
	"channel_id" integer NOT NULL,
	CONSTRAINT "alert_rule_channels_pkey" PRIMARY KEY("rule_id","channel_id")
);
--> statement-breakpoint
CREATE TABLE "alert_rules" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"kind" text NOT NULL,
	"severity" text NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"for_seconds" integer DEFAULT 0 NOT NULL,
	"flap_changes" integer,
	"flap_window_seconds" integer,
	"health_figure" text,
	"health_threshold" double precision,
	"box_ids" integer[],
	"device_types" text[],
	"repeat_interval_seconds" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" text,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "alert_rules_kind_check" CHECK ("alert_rules"."kind" in ('device_offline', 'box_offline', 'device_flapping', 'box_health')),
	CONSTRAINT "alert_rules_severity_check" CHECK ("alert_rules"."severity" in ('critical', 'major', 'minor', 'warning', 'info')),
	CONSTRAINT "alert_rules_for_check" CHECK ("alert_rules"."for_seconds" >= 0),
	CONSTRAINT "alert_rules_flapping_check" CHECK (("alert_rules"."kind" = 'device_flapping') = ("alert_rules"."flap_changes" is not null and "alert_rules"."flap_window_seconds" is not null)),
	CONSTRAINT "alert_rules_health_check" CHECK (("alert_rules"."kind" = 'box_health') = coalesce("alert_rules"."health_figure" in ('cpu', 'memory', 'disk', 'temperature') and "alert_rules"."health_threshold" is not null, false))
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"rule_id" integer NOT NULL,
	"subject" text NOT NULL,
	"box_id" integer NOT NULL,
	"device_id" integer,
	"state" text NOT NULL,
	"severity" text NOT NULL,
	"value" double precision,
	"condition_since" timestamp with time zone NOT NULL,
	"fires_at" timestamp with time zone NOT NULL,
	"fired_at" timestamp with time zone NOT NULL,
	"acknowledged_at" timestamp with time zone,
	"acknowledged_by" text,
	"acknowledge_comment" text,
	"resolved_at" timestamp with time zone,
	"resolution" text,
	"next_repeat_at" timestamp with time zone,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "alerts_state_check" CHECK ("alerts"."state" in ('firing', 'acknowledged', 'resolved')),
	CONSTRAINT "alerts_resolved_check" CHECK (("alerts"."state" = 'resolved') = ("alerts"."resolved_at" is not null))
);
--> statement-breakpoint
CREATE TABLE "webhook_attempts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"notification_id" bigint NOT NULL,
	"attempt" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"outcome" text NOT NULL,
	"http_status" integer,
	"latency_ms" integer NOT NULL,
	"error" text
);
--> statement-breakpoint
CREATE TABLE "webhook_channels" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"url" text NOT NULL,
	"secret" text NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"notify_acknowledged" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "alert_changes" ADD CONSTRAINT "alert_changes_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alert_notifications" ADD CONSTRAINT "alert_notifications_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alert_notifications" ADD CONSTRAINT "alert_notifications_channel_id_webhook_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."webhook_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alert_pending" ADD CONSTRAINT "alert_pending_rule_id_alert_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "public"."alert_rules"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alert_rule_channels" ADD CONSTRAINT "alert_rule_channels_rule_id_alert_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "public"."alert_rules"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alert_rule_channels" ADD CONSTRAINT "alert_rule_channels_channel_id_webhook_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."webhook_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_rule_id_alert_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "public"."alert_rules"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_attempts" ADD CONSTRAINT "webhook_attempts_notification_id_alert_notifications_id_fk" FOREIGN KEY ("notification_id") REFERENCES "public"."alert_notifications"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "alert_changes_alert_idx" ON "alert_changes" USING btree ("alert_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "alert_notifications_idempotency_key" ON "alert_notifications" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "alert_notifications_due_idx" ON "alert_notifications" USING btree ("next_attempt_at","id") WHERE "alert_notifications"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "alert_notifications_alert_channel_idx" ON "alert_notifications" USING btree ("alert_id","channel_id","id");--> statement-breakpoint
CREATE INDEX "alert_notifications_channel_idx" ON "alert_notifications" USING btree ("channel_id","id");--> statement-breakpoint
CREATE INDEX "alert_rule_channels_channel_idx" ON "alert_rule_channels" USING btree ("channel_id");--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_open_key" ON "alerts" USING btree ("rule_id","subject") WHERE "alerts"."state" <> 'resolved';--> statement-breakpoint
CREATE INDEX "alerts_state_idx" ON "alerts" USING btree ("state","id");--> statement-breakpoint
CREATE INDEX "alerts_box_idx" ON "alerts" USING btree ("box_id","id");--> statement-breakpoint
CREATE INDEX "alerts_device_idx" ON "alerts" USING btree ("device_id","id");--> statement-breakpoint
CREATE INDEX "alerts_rule_idx" ON "alerts" USING btree ("rule_id","id");--> statement-breakpoint
CREATE INDEX "alerts_fired_at_idx" ON "alerts" USING btree ("fired_at","id");--> statement-breakpoint
CREATE INDEX "alerts_repeat_idx" ON "alerts" USING btree ("next_repeat_at") WHERE "alerts"."state" = 'firing' and "alerts"."next_repeat_at" is not null;--> statement-breakpoint
CREATE INDEX "webhook_attempts_notification_idx" ON "webhook_attempts" USING btree ("notification_id","id");--> statement-breakpoint
CREATE INDEX "devices_removed_idx" ON "devices" USING btree ("removed_at","id") WHERE "devices"."removed_at" is not null;