-- Box rows are updated on every report. Free space in each page lets those updates stay HOT (no index
-- writes, dead versions pruned in place), and vacuum keeps up with the churn.
ALTER TABLE "boxes" SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
