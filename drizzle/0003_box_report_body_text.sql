ALTER TABLE "box_last_reports" ALTER COLUMN "body" SET DATA TYPE text;--> statement-breakpoint
-- Added by hand (drizzle-kit does not model storage). A body is written at most once per report and
-- read only when someone debugs a box: kept uncompressed (EXTERNAL: never compressed, moved out of
-- line only past toast_tuple_target, here the largest a page allows), so storing it costs Postgres a
-- copy instead of a jsonb parse and a pglz compression. Free space in each page keeps its updates HOT.
-- Rows written before keep their compressed form until their box's body changes.
ALTER TABLE "box_last_reports" ALTER COLUMN "body" SET STORAGE EXTERNAL;--> statement-breakpoint
ALTER TABLE "box_last_reports" SET (toast_tuple_target = 8160, fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
