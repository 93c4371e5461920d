-- Written by hand: drizzle-kit cannot write `partition by` (see src/db/schema.ts).
--
-- Box health over time, partitioned by month of `hour` like the status history; src/history makes the
-- partitions ahead of need and drops the expired ones.
CREATE TABLE "box_health" (
	"box_id" integer NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"reports" integer NOT NULL,
	"cpu_min" real,
	"cpu_max" real,
	"cpu_sum" double precision,
	"cpu_count" integer DEFAULT 0 NOT NULL,
	"memory_min" real,
	"memory_max" real,
	"memory_sum" double precision,
	"memory_count" integer DEFAULT 0 NOT NULL,
	"disk_min" real,
	"disk_max" real,
	"disk_sum" double precision,
	"disk_count" integer DEFAULT 0 NOT NULL,
	"temperature_min" real,
	"temperature_max" real,
	"temperature_sum" double precision,
	"temperature_count" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "box_health_pkey" PRIMARY KEY("box_id","hour")
) PARTITION BY RANGE ("hour");
--> statement-breakpoint
CREATE TABLE "history_horizon" (
	"table_name" text PRIMARY KEY NOT NULL,
	"dropped_before" timestamp with time zone NOT NULL,
	"dropped_through_id" bigint
);
--> statement-breakpoint
-- The partitioned status history, beside the table it replaces. Rows are copied over in batches while
-- the gateway serves, then the two swap names in one short transaction (src/history/upgrade.ts): the
-- copy of 2 M events takes minutes, far too long to hold a lock in this migration. Same columns, same
-- sequence, so every id is kept and old replicas keep writing by name.
CREATE TABLE "status_events_partitioned" (
	"id" bigint DEFAULT nextval('status_events_id_seq') NOT NULL,
	"box_id" integer NOT NULL,
	"device_id" integer,
	"from_status" text,
	"to_status" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	CONSTRAINT "status_events_partitioned_pkey" PRIMARY KEY("id","at")
) PARTITION BY RANGE ("at");
--> statement-breakpoint
CREATE INDEX "status_events_partitioned_box_idx" ON "status_events_partitioned" USING btree ("box_id","id");--> statement-breakpoint
CREATE INDEX "status_events_partitioned_device_idx" ON "status_events_partitioned" USING btree ("device_id","id");--> statement-breakpoint
CREATE INDEX "status_events_partitioned_at_idx" ON "status_events_partitioned" USING btree ("at","id");--> statement-breakpoint
CREATE INDEX "status_events_partitioned_device_at_idx" ON "status_events_partitioned" USING btree ("device_id","at","id");--> statement-breakpoint
CREATE INDEX "status_events_partitioned_box_at_idx" ON "status_events_partitioned" USING btree ("box_id","at","id");
