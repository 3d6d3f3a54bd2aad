-- Version 7: sync runs (tasks), so that every process sharing the database sees them,
-- and after a restart. One row per run: its scope, what started it, where it is, its
-- counters, the failed details it kept (at most 100) and its error, as JSONB.

CREATE TABLE cmdb_runs (
    id VARCHAR(64) COLLATE "C" NOT NULL,
    secret_id VARCHAR(255) COLLATE "C" NOT NULL,
    vendor VARCHAR(16) COLLATE "C" NOT NULL,
    region VARCHAR(255) COLLATE "C" NOT NULL,
    resource_type VARCHAR(16) COLLATE "C" NOT NULL,
    run_trigger VARCHAR(16) COLLATE "C" NOT NULL,
    state VARCHAR(16) COLLATE "C" NOT NULL,
    pages BIGINT NOT NULL,
    hosts_seen BIGINT NOT NULL,
    hosts_stored BIGINT NOT NULL,
    hosts_failed BIGINT NOT NULL,
    hosts_created BIGINT NOT NULL,
    hosts_updated BIGINT NOT NULL,
    hosts_unchanged BIGINT NOT NULL,
    hosts_released BIGINT NOT NULL,
    expected_total BIGINT NULL,
    failed_details JSONB NOT NULL,
    error_report JSONB NULL,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ NULL,
    finished_at TIMESTAMPTZ NULL,
    PRIMARY KEY (id)
);

-- Listings, most recent first, of all runs or of one secret's.
CREATE INDEX cmdb_runs_created ON cmdb_runs (created_at, id);

CREATE INDEX cmdb_runs_secret ON cmdb_runs (secret_id, created_at, id);

-- Running runs (checked for a dead process) and pruning of finished ones.
CREATE INDEX cmdb_runs_state ON cmdb_runs (state, finished_at);
