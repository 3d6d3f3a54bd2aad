-- Version 4: the schema of the earlier migration runner at its version 4 (hosts,
-- secrets, scope locks; times as nanoseconds since the epoch or RFC 3339 text).
-- A database that runner left at version 4 is recorded as having applied this one.

CREATE TABLE IF NOT EXISTS cmdb_hosts (
    vendor TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    region TEXT NOT NULL,
    zone TEXT NULL,
    name TEXT NOT NULL,
    name_lc TEXT NOT NULL,
    description TEXT NULL,
    hostname TEXT NULL,
    status TEXT NOT NULL,
    raw_status TEXT NOT NULL,
    instance_type TEXT NULL,
    cpu BIGINT NULL,
    memory_mib BIGINT NULL,
    gpu_count BIGINT NULL,
    gpu_spec TEXT NULL,
    os_type TEXT NOT NULL,
    os_name TEXT NULL,
    image_id TEXT NULL,
    public_ips TEXT NOT NULL,
    private_ips TEXT NOT NULL,
    ip_search TEXT NOT NULL,
    pay_mode TEXT NOT NULL,
    created_at TEXT NULL,
    expire_at TEXT NULL,
    tags TEXT NOT NULL,
    vpc_id TEXT NULL,
    security_groups TEXT NOT NULL,
    key_pairs TEXT NOT NULL,
    serial_number TEXT NULL,
    extra TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    released_at BIGINT NULL,
    PRIMARY KEY (vendor, instance_id)
);

CREATE INDEX IF NOT EXISTS cmdb_hosts_scope ON cmdb_hosts (secret_id, region, released_at, last_seen_at);

CREATE TABLE IF NOT EXISTS cmdb_secrets (
    id TEXT NOT NULL,
    vendor TEXT NOT NULL,
    description TEXT NOT NULL,
    api_key TEXT NOT NULL,
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
    scope_key TEXT NOT NULL,
    scope TEXT NOT NULL,
    owner_pid BIGINT NOT NULL,
    owner_start BIGINT NOT NULL,
    owner_token TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope_key)
);

CREATE INDEX IF NOT EXISTS cmdb_hosts_last_seen ON cmdb_hosts (last_seen_at);

CREATE INDEX IF NOT EXISTS cmdb_hosts_name ON cmdb_hosts (name);

ALTER TABLE cmdb_hosts ADD COLUMN missed_at BIGINT NULL;

ALTER TABLE cmdb_scope_locks ADD COLUMN owner_host TEXT NULL;

ALTER TABLE cmdb_scope_locks ADD COLUMN owner_boot TEXT NULL;

ALTER TABLE cmdb_secrets ADD COLUMN allow_insecure_http BIGINT NULL;

ALTER TABLE cmdb_secrets ADD COLUMN tls_ca_pem TEXT NULL;

ALTER TABLE cmdb_secrets ADD COLUMN tls_skip_verify BIGINT NULL;
