-- Version 4: the schema of the earlier migration runner at its version 4 (hosts,
-- secrets, scope locks; times as nanoseconds since the epoch or RFC 3339 text).
-- A database that runner left at version 4 is recorded as having applied this one.

CREATE TABLE IF NOT EXISTS cmdb_hosts (
    vendor VARCHAR(16) NOT NULL,
    instance_id VARCHAR(255) NOT NULL,
    secret_id VARCHAR(255) NOT NULL,
    region VARCHAR(255) NOT NULL,
    zone VARCHAR(255) NULL,
    name VARCHAR(512) NOT NULL,
    name_lc VARCHAR(512) NOT NULL,
    description LONGTEXT NULL,
    hostname VARCHAR(512) NULL,
    status VARCHAR(32) NOT NULL,
    raw_status VARCHAR(255) NOT NULL,
    instance_type VARCHAR(255) NULL,
    cpu BIGINT NULL,
    memory_mib BIGINT NULL,
    gpu_count BIGINT NULL,
    gpu_spec VARCHAR(255) NULL,
    os_type VARCHAR(16) NOT NULL,
    os_name VARCHAR(512) NULL,
    image_id VARCHAR(255) NULL,
    public_ips LONGTEXT NOT NULL,
    private_ips LONGTEXT NOT NULL,
    ip_search LONGTEXT NOT NULL,
    pay_mode VARCHAR(16) NOT NULL,
    created_at VARCHAR(64) NULL,
    expire_at VARCHAR(64) NULL,
    tags LONGTEXT NOT NULL,
    vpc_id VARCHAR(255) NULL,
    security_groups LONGTEXT NOT NULL,
    key_pairs LONGTEXT NOT NULL,
    serial_number VARCHAR(255) NULL,
    extra LONGTEXT NOT NULL,
    content_hash VARCHAR(64) NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    released_at BIGINT NULL,
    PRIMARY KEY (vendor, instance_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX cmdb_hosts_scope ON cmdb_hosts (secret_id, region, released_at, last_seen_at);

CREATE TABLE IF NOT EXISTS cmdb_secrets (
    id VARCHAR(255) NOT NULL,
    vendor VARCHAR(16) NOT NULL,
    description LONGTEXT NOT NULL,
    api_key VARCHAR(255) NOT NULL,
    api_secret LONGTEXT NOT NULL,
    allowed_regions LONGTEXT NOT NULL,
    request_rate BIGINT NOT NULL,
    address LONGTEXT NULL,
    created_at BIGINT NOT NULL,
    id_lc LONGTEXT NOT NULL,
    description_lc LONGTEXT NOT NULL,
    api_key_lc LONGTEXT NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT cmdb_secrets_vendor_api_key UNIQUE (vendor, api_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS cmdb_scope_locks (
    scope_key VARCHAR(64) NOT NULL,
    scope LONGTEXT NOT NULL,
    owner_pid BIGINT NOT NULL,
    owner_start BIGINT NOT NULL,
    owner_token VARCHAR(64) NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX cmdb_hosts_last_seen ON cmdb_hosts (last_seen_at);

CREATE INDEX cmdb_hosts_name ON cmdb_hosts (name);

ALTER TABLE cmdb_hosts ADD COLUMN missed_at BIGINT NULL;

ALTER TABLE cmdb_scope_locks ADD COLUMN owner_host VARCHAR(255) NULL;

ALTER TABLE cmdb_scope_locks ADD COLUMN owner_boot VARCHAR(64) NULL;

ALTER TABLE cmdb_secrets ADD COLUMN allow_insecure_http BIGINT NULL;

ALTER TABLE cmdb_secrets ADD COLUMN tls_ca_pem LONGTEXT NULL;

ALTER TABLE cmdb_secrets ADD COLUMN tls_skip_verify BIGINT NULL;
