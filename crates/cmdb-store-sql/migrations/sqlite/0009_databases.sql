-- Version 9: managed database instances (RDS), synced as hosts are: keyed by
-- (vendor, instance_id), the scope's columns, a lowercased name for keywords, the
-- endpoints' hosts one a line for keywords, and the sync's bookkeeping. Types as
-- cmdb_hosts has them since version 5: times as ISO 8601 text in UTC with six decimals
-- (fixed width, so text order is time order), JSON as text holding JSON.

CREATE TABLE cmdb_databases (
    vendor TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    region TEXT NOT NULL,
    zone TEXT NULL,
    name TEXT NOT NULL,
    name_lc TEXT NOT NULL,
    engine TEXT NOT NULL,
    engine_version TEXT NULL,
    status TEXT NOT NULL,
    raw_status TEXT NOT NULL,
    instance_class TEXT NULL,
    cpu BIGINT NULL,
    memory_mib BIGINT NULL,
    storage_gb BIGINT NULL,
    storage_type TEXT NULL,
    endpoints TEXT NOT NULL,
    endpoint_search TEXT NOT NULL,
    vpc_id TEXT NULL,
    pay_mode TEXT NOT NULL,
    created_at TEXT NULL,
    expire_at TEXT NULL,
    tags TEXT NOT NULL,
    extra TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    released_at TEXT NULL,
    missed_at TEXT NULL,
    PRIMARY KEY (vendor, instance_id)
);

-- A scope's active instances and those a run did not see.
CREATE INDEX cmdb_databases_scope ON cmdb_databases (secret_id, region, released_at, last_seen_at);

CREATE INDEX cmdb_databases_last_seen ON cmdb_databases (last_seen_at);

CREATE INDEX cmdb_databases_name ON cmdb_databases (name);
