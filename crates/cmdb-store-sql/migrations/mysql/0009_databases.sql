-- Version 9: managed database instances (RDS), synced as hosts are: keyed by
-- (vendor, instance_id), the scope's columns, a lowercased name for keywords, the
-- endpoints' hosts one a line for keywords, and the sync's bookkeeping. Types as
-- cmdb_hosts has them since version 5: times DATETIME(6) in UTC, JSON JSON, text
-- compared and sorted by bytes (utf8mb4_bin).

CREATE TABLE cmdb_databases (
    vendor VARCHAR(16) NOT NULL,
    instance_id VARCHAR(255) NOT NULL,
    secret_id VARCHAR(255) NOT NULL,
    region VARCHAR(255) NOT NULL,
    zone VARCHAR(255) NULL,
    name VARCHAR(512) NOT NULL,
    name_lc VARCHAR(512) NOT NULL,
    engine VARCHAR(255) NOT NULL,
    engine_version VARCHAR(255) NULL,
    status VARCHAR(32) NOT NULL,
    raw_status VARCHAR(255) NOT NULL,
    instance_class VARCHAR(255) NULL,
    cpu BIGINT NULL,
    memory_mib BIGINT NULL,
    storage_gb BIGINT NULL,
    storage_type VARCHAR(255) NULL,
    endpoints JSON NOT NULL,
    endpoint_search LONGTEXT NOT NULL,
    vpc_id VARCHAR(255) NULL,
    pay_mode VARCHAR(16) NOT NULL,
    created_at DATETIME(6) NULL,
    expire_at DATETIME(6) NULL,
    tags JSON NOT NULL,
    extra JSON NOT NULL,
    content_hash VARCHAR(64) NOT NULL,
    first_seen_at DATETIME(6) NOT NULL,
    last_seen_at DATETIME(6) NOT NULL,
    released_at DATETIME(6) NULL,
    missed_at DATETIME(6) NULL,
    PRIMARY KEY (vendor, instance_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A scope's active instances and those a run did not see.
CREATE INDEX cmdb_databases_scope ON cmdb_databases (secret_id, region, released_at, last_seen_at);

CREATE INDEX cmdb_databases_last_seen ON cmdb_databases (last_seen_at);

CREATE INDEX cmdb_databases_name ON cmdb_databases (name);
