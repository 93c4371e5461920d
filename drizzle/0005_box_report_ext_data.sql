-- An older box's health figures (gateway_ext_data) change at every report and nothing else does: the
-- gateway then writes only them, here, and leaves box_last_reports.body as it is (a 4 KB row copied
-- and logged at every report before). The last body is the stored one with these figures in place of
-- its own, while last_report_ext_for = last_report_hash (see src/models/boxes.ts). Nullable, no default:
-- adding them rewrites nothing.
ALTER TABLE "boxes" ADD COLUMN "last_report_ext_data" text;--> statement-breakpoint
ALTER TABLE "boxes" ADD COLUMN "last_report_ext_prefix" integer;--> statement-breakpoint
ALTER TABLE "boxes" ADD COLUMN "last_report_ext_suffix" integer;--> statement-breakpoint
ALTER TABLE "boxes" ADD COLUMN "last_report_ext_for" text;