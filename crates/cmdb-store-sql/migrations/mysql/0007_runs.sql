-- Version 7: sync runs (tasks), so that every process sharing the database sees them,
-- and after a restart. One row per run: its scope, what started it, where it is, its
-- counters, the failed details it kept (at most 100) and its error, as JSON. Times are
-- DATETIME(6) in UTC, as in the other tables.

CREATE TABLE cmdb_runs (
    id VARCHAR(64) NOT NULL,
    secret_id VARCHAR(255) NOT NULL,
    vendor VARCHAR(16) NOT NULL,
    region VARCHAR(255) NOT NULL,
    resource_type VARCHAR(16) NOT NULL,
    run_trigger VARCHAR(16) NOT NULL,
    state VARCHAR(16) NOT NULL,
    pages BIGINT NOT NULL,
    hosts_seen BIGINT NOT NULL,
    hosts_stored BIGINT NOT NULL,
    hosts_failed BIGINT NOT NULL,
    hosts_created BIGINT NOT NULL,
    hosts_updated BIGINT NOT NULL,
    hosts_unchanged BIGINT NOT NULL,
    hosts_released BIGINT NOT NULL,
    expected_total BIGINT NULL,
    failed_details JSON NOT NULL,
    error_report JSON NULL,
    created_at DATETIME(6) NOT NULL,
    started_at DATETIME(6) NULL,
    finished_at DATETIME(6) NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Listings, most recent first, of all runs or of one secret's.
CREATE INDEX cmdb_runs_created ON cmdb_runs (created_at, id);

CREATE INDEX cmdb_runs_secret ON cmdb_runs (secret_id, created_at, id);

-- Running runs (checked for a dead process) and pruning of finished ones.
CREATE INDEX cmdb_runs_state ON cmdb_runs (state, finished_at);
