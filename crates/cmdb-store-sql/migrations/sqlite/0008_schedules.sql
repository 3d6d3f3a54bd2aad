-- Version 8: schedules and the process running a sync.
-- A secret's sync_interval (seconds; NULL: synced only when asked), when its next
-- scheduled sync is due (claimed by moving it forward, compare-and-swap) and how many
-- scheduled syncs in a row failed. A run's runner (the process that runs it) and parent
-- (the whole-account run it is a region of).

ALTER TABLE cmdb_secrets ADD COLUMN sync_interval_secs INTEGER NULL;
ALTER TABLE cmdb_secrets ADD COLUMN next_sync_at TEXT NULL;
ALTER TABLE cmdb_secrets ADD COLUMN sync_failures INTEGER NOT NULL DEFAULT 0;

-- Due syncs, earliest first.
CREATE INDEX cmdb_secrets_next_sync ON cmdb_secrets (next_sync_at);

ALTER TABLE cmdb_runs ADD COLUMN runner TEXT NULL;
-- The whole-account run a region's run belongs to.
ALTER TABLE cmdb_runs ADD COLUMN parent_id TEXT NULL;

CREATE INDEX cmdb_runs_parent ON cmdb_runs (parent_id);
