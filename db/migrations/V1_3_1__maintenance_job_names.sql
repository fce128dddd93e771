-- Maintenance jobs are registered in the application (OrderFunctions.Core.Jobs.MaintenanceJobs), once: the run
-- records take any well-formed job name instead of a list that every new job would have to extend by migration.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

ALTER TABLE maintenance_runs DROP CONSTRAINT maintenance_runs_job_check;
ALTER TABLE maintenance_runs ADD CONSTRAINT maintenance_runs_job_check CHECK (job ~ '^[a-z][a-z0-9-]{0,62}[a-z0-9]$');

RESET ROLE;
