CREATE TABLE "box_config_changes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"box_id" integer NOT NULL,
	"requested_by" text,
	"requested_at" timestamp with time zone NOT NULL,
	"request" jsonb NOT NULL,
	"target" text,
	"outcome" text NOT NULL,
	"http_status" integer,
	"response" jsonb,
	"error_code" text,
	"error_message" text,
	"duration_ms" integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE "box_last_reports" (
	"box_id" integer PRIMARY KEY NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"body" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "boxes" (
	"id" serial PRIMARY KEY NOT NULL,
	"license_key" text NOT NULL,
	"name" text,
	"address" text,
	"report_format" text,
	"status" text DEFAULT 'online' NOT NULL,
	"status_since" timestamp with time zone DEFAULT now() NOT NULL,
	"first_report_at" timestamp with time zone,
	"last_report_at" timestamp with time zone,
	"report_count" bigint DEFAULT 0 NOT NULL,
	"observed_period_seconds" real,
	"gateway" jsonb,
	"gateway_ext_data" jsonb,
	"last_report_hash" text,
	"devices_hash" text,
	"api_address" text,
	"api_port" integer,
	"monitor_url" text,
	"report_period_seconds" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"removed_at" timestamp with time zone,
	CONSTRAINT "boxes_status_check" CHECK ("boxes"."status" in ('online', 'offline'))
);
--> statement-breakpoint
CREATE TABLE "devices" (
	"id" serial PRIMARY KEY NOT NULL,
	"box_id" integer NOT NULL,
	"external_id" text NOT NULL,
	"name" text,
	"ip" text,
	"type" text NOT NULL,
	"url" text,
	"permission_id" text,
	"status" text NOT NULL,
	"status_since" timestamp with time zone NOT NULL,
	"reported_status" text,
	"reported_type" text,
	"first_seen_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"removed_at" timestamp with time zone,
	CONSTRAINT "devices_status_check" CHECK ("devices"."status" in ('online', 'offline', 'unknown')),
	CONSTRAINT "devices_type_check" CHECK ("devices"."type" in ('photo', 'rtsp', 'file', 'gb28181', 'unknown'))
);
--> statement-breakpoint
CREATE TABLE "status_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"box_id" integer NOT NULL,
	"device_id" integer,
	"from_status" text,
	"to_status" text NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "box_config_changes" ADD CONSTRAINT "box_config_changes_box_id_boxes_id_fk" FOREIGN KEY ("box_id") REFERENCES "public"."boxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "box_last_reports" ADD CONSTRAINT "box_last_reports_box_id_boxes_id_fk" FOREIGN KEY ("box_id") REFERENCES "public"."boxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_box_id_boxes_id_fk" FOREIGN KEY ("box_id") REFERENCES "public"."boxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "status_events" ADD CONSTRAINT "status_events_box_id_boxes_id_fk" FOREIGN KEY ("box_id") REFERENCES "public"."boxes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "status_events" ADD CONSTRAINT "status_events_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "box_config_changes_box_idx" ON "box_config_changes" USING btree ("box_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "boxes_license_key_key" ON "boxes" USING btree ("license_key");--> statement-breakpoint
CREATE INDEX "boxes_status_idx" ON "boxes" USING btree ("status","id");--> statement-breakpoint
CREATE UNIQUE INDEX "devices_box_external_id_key" ON "devices" USING btree ("box_id","external_id");--> statement-breakpoint
CREATE INDEX "devices_status_idx" ON "devices" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "devices_status_since_idx" ON "devices" USING btree ("status","status_since","id");--> statement-breakpoint
CREATE INDEX "devices_name_idx" ON "devices" USING btree (coalesce("name", ''),"id");--> statement-breakpoint
CREATE INDEX "devices_type_idx" ON "devices" USING btree ("type","id");--> statement-breakpoint
CREATE INDEX "status_events_box_idx" ON "status_events" USING btree ("box_id","id");--> statement-breakpoint
CREATE INDEX "status_events_device_idx" ON "status_events" USING btree ("device_id","id");--> statement-breakpoint
CREATE INDEX "status_events_at_idx" ON "status_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "status_events_device_at_idx" ON "status_events" USING btree ("device_id","at","id");--> statement-breakpoint
CREATE INDEX "status_events_box_at_idx" ON "status_events" USING btree ("box_id","at","id");