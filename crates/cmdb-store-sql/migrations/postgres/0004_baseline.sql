-- Version 4: the schema of the earlier migration runner at its version 4 (hosts,
-- secrets, scope locks; times as nanoseconds since the epoch or RFC 3339 text).
-- A database that runner left at version 4 is recorded as having applied this one.

CREATE TABLE IF NOT EXISTS cmdb_hosts (
    vendor VARCHAR(16) COLLATE "C" NOT NULL,
    instance_id VARCHAR(255) COLLATE "C" NOT NULL,
    secret_id VARCHAR(255) COLLATE "C" NOT NULL,
    region VARCHAR(255) COLLATE "C" NOT NULL,
    zone VARCHAR(255) COLLATE "C" NULL,
    name VARCHAR(512) COLLATE "C" NOT NULL,
    name_lc VARCHAR(512) COLLATE "C" NOT NULL,
    description TEXT NULL,
    hostname VARCHAR(512) COLLATE "C" NULL,
    status VARCHAR(32) COLLATE "C" NOT NULL,
    raw_status VARCHAR(255) COLLATE "C" NOT NULL,
    instance_type VARCHAR(255) COLLATE "C" NULL,
    cpu BIGINT NULL,
    memory_mib BIGINT NULL,
    gpu_count BIGINT NULL,
    gpu_spec VARCHAR(255) COLLATE "C" NULL,
    os_type VARCHAR(16) COLLATE "C" NOT NULL,
    os_name VARCHAR(512) COLLATE "C" NULL,
    image_id VARCHAR(255) COLLATE "C" NULL,
    public_ips TEXT NOT NULL,
    private_ips TEXT NOT NULL,
    ip_search TEXT NOT NULL,
    pay_mode VARCHAR(16) COLLATE "C" NOT NULL,
    created_at VARCHAR(64) COLLATE "C" NULL,
    expire_at VARCHAR(64) COLLATE "C" NULL,
    tags TEXT NOT NULL,
    vpc_id VARCHAR(255) COLLATE "C" NULL,
    security_groups TEXT NOT NULL,
    key_pairs TEXT NOT NULL,
    serial_number VARCHAR(255) COLLATE "C" NULL,
    extra TEXT NOT NULL,
    content_hash VARCHAR(64) COLLATE "C" NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    released_at BIGINT NULL,
    PRIMARY KEY (vendor, instance_id)
);

CREATE INDEX IF NOT EXISTS cmdb_hosts_scope ON cmdb_hosts (secret_id, region, released_at, last_seen_at);

CREATE TABLE IF NOT EXISTS cmdb_secrets (
    id VARCHAR(255) COLLATE "C" NOT NULL,
    vendor VARCHAR(16) COLLATE "C" NOT NULL,
    description TEXT NOT NULL,
    api_key VARCHAR(255) COLLATE "C" NOT NULL,
    api_secret TEXT NOT NULL,
    allowed_regions TEXT NOT NULL,
    request_rate BIGINT NOT NULL,
    address TEXT NULL,
    created_at BIGINT NOT NULL,
    id_lc TEXT NOT NULL,
    description_lc TEXT NOT NULL,
    api_key_lc TEXT NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT cmdb_secrets_vendor_api_key UNIQUE (vendor, api_key)
);

CREATE TABLE IF NOT EXISTS cmdb_scope_locks (
    scope_key VARCHAR(64) COLLATE "C" NOT NULL,
    scope TEXT NOT NULL,
    owner_pid BIGINT NOT NULL,
    owner_start BIGINT NOT NULL,
    owner_token VARCHAR(64) COLLATE "C" NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope_key)
);

CREATE INDEX IF NOT EXISTS cmdb_hosts_last_seen ON cmdb_hosts (last_seen_at);

CREATE INDEX IF NOT EXISTS cmdb_hosts_name ON cmdb_hosts (name);

ALTER TABLE cmdb_hosts ADD COLUMN missed_at BIGINT NULL;

ALTER TABLE cmdb_scope_locks ADD COLUMN owner_host VARCHAR(255) COLLATE "C" NULL;

ALTER TABLE cmdb_scope_locks ADD COLUMN owner_boot VARCHAR(64) COLLATE "C" NULL;

ALTER TABLE cmdb_secrets ADD COLUMN allow_insecure_http BIGINT NULL;

ALTER TABLE cmdb_secrets ADD COLUMN tls_ca_pem TEXT NULL;

ALTER TABLE cmdb_secrets ADD COLUMN tls_skip_verify BIGINT NULL;
