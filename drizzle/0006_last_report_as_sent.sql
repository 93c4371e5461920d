-- Added by hand before the drops: a box whose last body was kept as the stored body plus its newer
-- health figures (the last_report_ext_* columns, while last_report_ext_for = last_report_hash) gets
-- that last body written out whole, so no box loses its last report.
UPDATE "box_last_reports" r SET "body" = convert_from(
    substring(convert_to(r."body", 'UTF8') from 1 for b."last_report_ext_prefix")
    || convert_to(b."last_report_ext_data", 'UTF8')
    || substring(convert_to(r."body", 'UTF8') from octet_length(convert_to(r."body", 'UTF8')) - b."last_report_ext_suffix" + 1),
    'UTF8')
  FROM "boxes" b
  WHERE b."id" = r."box_id" AND b."last_report_ext_for" = b."last_report_hash" AND b."last_report_ext_data" IS NOT NULL
    AND b."last_report_ext_prefix" IS NOT NULL AND b."last_report_ext_suffix" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "box_last_reports" DROP COLUMN "received_at";--> statement-breakpoint
ALTER TABLE "boxes" DROP COLUMN "last_report_ext_data";--> statement-breakpoint
ALTER TABLE "boxes" DROP COLUMN "last_report_ext_prefix";--> statement-breakpoint
ALTER TABLE "boxes" DROP COLUMN "last_report_ext_suffix";--> statement-breakpoint
ALTER TABLE "boxes" DROP COLUMN "last_report_ext_for";