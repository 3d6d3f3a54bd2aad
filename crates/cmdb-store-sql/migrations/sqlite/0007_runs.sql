-- Version 7: sync runs (tasks), so that every process sharing the database sees them,
-- and after a restart. One row per run: its scope, what started it, where it is, its
-- counters, the failed details it kept (at most 100, JSON text) and its error (JSON
-- text). Times are ISO 8601 text in UTC with six decimals, as in the other tables.

CREATE TABLE cmdb_runs (
    id TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    vendor TEXT NOT NULL,
    region TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    run_trigger TEXT NOT NULL,
    state TEXT NOT NULL,
    pages BIGINT NOT NULL,
    hosts_seen BIGINT NOT NULL,
    hosts_stored BIGINT NOT NULL,
    hosts_failed BIGINT NOT NULL,
    hosts_created BIGINT NOT NULL,
    hosts_updated BIGINT NOT NULL,
    hosts_unchanged BIGINT NOT NULL,
    hosts_released BIGINT NOT NULL,
    expected_total BIGINT NULL,
    failed_details TEXT NOT NULL,
    error_report TEXT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT NULL,
    finished_at TEXT NULL,
    PRIMARY KEY (id)
);

-- Listings, most recent first, of all runs or of one secret's.
CREATE INDEX cmdb_runs_created ON cmdb_runs (created_at, id);

CREATE INDEX cmdb_runs_secret ON cmdb_runs (secret_id, created_at, id);

-- Running runs (checked for a dead process) and pruning of finished ones.
CREATE INDEX cmdb_runs_state ON cmdb_runs (state, finished_at);
