-- Version 9: managed database instances (RDS), synced as hosts are: keyed by
-- (vendor, instance_id), the scope's columns, a lowercased name for keywords, the
-- endpoints' hosts one a line for keywords, and the sync's bookkeeping. Types as
-- cmdb_hosts has them since version 5: times TIMESTAMPTZ, JSON JSONB, text compared
-- and sorted by bytes (COLLATE "C").

CREATE TABLE cmdb_databases (
    vendor VARCHAR(16) COLLATE "C" NOT NULL,
    instance_id VARCHAR(255) COLLATE "C" NOT NULL,
    secret_id VARCHAR(255) COLLATE "C" NOT NULL,
    region VARCHAR(255) COLLATE "C" NOT NULL,
    zone VARCHAR(255) COLLATE "C" NULL,
    name VARCHAR(512) COLLATE "C" NOT NULL,
    name_lc VARCHAR(512) COLLATE "C" NOT NULL,
    engine VARCHAR(255) COLLATE "C" NOT NULL,
    engine_version VARCHAR(255) COLLATE "C" NULL,
    status VARCHAR(32) COLLATE "C" NOT NULL,
    raw_status VARCHAR(255) COLLATE "C" NOT NULL,
    instance_class VARCHAR(255) COLLATE "C" NULL,
    cpu BIGINT NULL,
    memory_mib BIGINT NULL,
    storage_gb BIGINT NULL,
    storage_type VARCHAR(255) COLLATE "C" NULL,
    endpoints JSONB NOT NULL,
    endpoint_search TEXT NOT NULL,
    vpc_id VARCHAR(255) COLLATE "C" NULL,
    pay_mode VARCHAR(16) COLLATE "C" NOT NULL,
    created_at TIMESTAMPTZ NULL,
    expire_at TIMESTAMPTZ NULL,
    tags JSONB NOT NULL,
    extra JSONB NOT NULL,
    content_hash VARCHAR(64) COLLATE "C" NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    released_at TIMESTAMPTZ NULL,
    missed_at TIMESTAMPTZ NULL,
    PRIMARY KEY (vendor, instance_id)
);

-- A scope's active instances and those a run did not see.
CREATE INDEX cmdb_databases_scope ON cmdb_databases (secret_id, region, released_at, last_seen_at);

CREATE INDEX cmdb_databases_last_seen ON cmdb_databases (last_seen_at);

CREATE INDEX cmdb_databases_name ON cmdb_databases (name);
