-- Version 5: times as ISO 8601 text in UTC with six decimals
-- ('2026-12-04T05:06:07.123456Z': fixed width, so text order is time order), for
-- people and tools reading the tables; JSON columns stay TEXT holding JSON. SQLite
-- cannot change a column's type, so each table is rebuilt and its rows copied.
--
-- A bookkeeping time was nanoseconds since the epoch: whole seconds plus microseconds,
-- in integer arithmetic. A host's created_at and expire_at were RFC 3339 text in UTC
-- ("...Z", no decimals or up to nine), brought to six decimals.

CREATE TABLE cmdb_hosts_v5 (
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
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    released_at TEXT NULL,
    missed_at TEXT NULL,
    PRIMARY KEY (vendor, instance_id)
);

INSERT INTO cmdb_hosts_v5
SELECT vendor, instance_id, secret_id, region, zone, name, name_lc, description, hostname,
    status, raw_status, instance_type, cpu, memory_mib, gpu_count, gpu_spec, os_type,
    os_name, image_id, public_ips, private_ips, ip_search, pay_mode,
    CASE WHEN length(created_at) = 20 THEN substr(created_at, 1, 19) || '.000000Z'
        ELSE substr(created_at, 1, 19) || '.'
            || substr(substr(created_at, 21, length(created_at) - 21) || '000000', 1, 6) || 'Z'
    END,
    CASE WHEN length(expire_at) = 20 THEN substr(expire_at, 1, 19) || '.000000Z'
        ELSE substr(expire_at, 1, 19) || '.'
            || substr(substr(expire_at, 21, length(expire_at) - 21) || '000000', 1, 6) || 'Z'
    END,
    tags, vpc_id, security_groups, key_pairs, serial_number, extra, content_hash,
    strftime('%Y-%m-%dT%H:%M:%S', first_seen_at / 1000000000, 'unixepoch')
        || printf('.%06dZ', first_seen_at % 1000000000 / 1000),
    strftime('%Y-%m-%dT%H:%M:%S', last_seen_at / 1000000000, 'unixepoch')
        || printf('.%06dZ', last_seen_at % 1000000000 / 1000),
    strftime('%Y-%m-%dT%H:%M:%S', released_at / 1000000000, 'unixepoch')
        || printf('.%06dZ', released_at % 1000000000 / 1000),
    strftime('%Y-%m-%dT%H:%M:%S', missed_at / 1000000000, 'unixepoch')
        || printf('.%06dZ', missed_at % 1000000000 / 1000)
FROM cmdb_hosts;

DROP TABLE cmdb_hosts;

ALTER TABLE cmdb_hosts_v5 RENAME TO cmdb_hosts;

CREATE INDEX cmdb_hosts_scope ON cmdb_hosts (secret_id, region, released_at, last_seen_at);

CREATE INDEX cmdb_hosts_last_seen ON cmdb_hosts (last_seen_at);

CREATE INDEX cmdb_hosts_name ON cmdb_hosts (name);

CREATE TABLE cmdb_secrets_v5 (
    id TEXT NOT NULL,
    vendor TEXT NOT NULL,
    description TEXT NOT NULL,
    api_key TEXT NOT NULL,
    api_secret TEXT NOT NULL,
    allowed_regions TEXT NOT NULL,
    request_rate BIGINT NOT NULL,
    address TEXT NULL,
    created_at TEXT NOT NULL,
    id_lc TEXT NOT NULL,
    description_lc TEXT NOT NULL,
    api_key_lc TEXT NOT NULL,
    allow_insecure_http BIGINT NULL,
    tls_ca_pem TEXT NULL,
    tls_skip_verify BIGINT NULL,
    PRIMARY KEY (id),
    CONSTRAINT cmdb_secrets_vendor_api_key UNIQUE (vendor, api_key)
);

INSERT INTO cmdb_secrets_v5
SELECT id, vendor, description, api_key, api_secret, allowed_regions, request_rate, address,
    strftime('%Y-%m-%dT%H:%M:%S', created_at / 1000000000, 'unixepoch')
        || printf('.%06dZ', created_at % 1000000000 / 1000),
    id_lc, description_lc, api_key_lc, allow_insecure_http, tls_ca_pem, tls_skip_verify
FROM cmdb_secrets;

DROP TABLE cmdb_secrets;

ALTER TABLE cmdb_secrets_v5 RENAME TO cmdb_secrets;

CREATE TABLE cmdb_scope_locks_v5 (
    scope_key TEXT NOT NULL,
    scope TEXT NOT NULL,
    owner_pid BIGINT NOT NULL,
    owner_start BIGINT NOT NULL,
    owner_token TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    owner_host TEXT NULL,
    owner_boot TEXT NULL,
    PRIMARY KEY (scope_key)
);

INSERT INTO cmdb_scope_locks_v5
SELECT scope_key, scope, owner_pid, owner_start, owner_token,
    strftime('%Y-%m-%dT%H:%M:%S', acquired_at / 1000000000, 'unixepoch')
        || printf('.%06dZ', acquired_at % 1000000000 / 1000),
    strftime('%Y-%m-%dT%H:%M:%S', expires_at / 1000000000, 'unixepoch')
        || printf('.%06dZ', expires_at % 1000000000 / 1000),
    owner_host, owner_boot
FROM cmdb_scope_locks;

DROP TABLE cmdb_scope_locks;

ALTER TABLE cmdb_scope_locks_v5 RENAME TO cmdb_scope_locks;

-- The earlier runner's version table: gone, so that an older build connecting to this
-- database fails its own migrations instead of writing integers into these columns.
DROP TABLE IF EXISTS cmdb_schema_migrations;
