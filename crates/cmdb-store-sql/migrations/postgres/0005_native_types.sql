-- Version 5: native types, for people and tools reading the tables. Times become
-- TIMESTAMPTZ (kept to the microsecond), JSON columns JSONB. Values are converted in
-- place; the indexes on converted columns are rebuilt by ALTER TABLE.
--
-- A bookkeeping time was nanoseconds since the epoch: whole seconds plus microseconds,
-- in integer arithmetic so that nothing is rounded through a float.
-- A host's created_at and expire_at were RFC 3339 text in UTC ("...Z", no decimals or up
-- to nine), cut to six decimals (as on the other databases) and read as it is.

ALTER TABLE cmdb_hosts
    ALTER COLUMN created_at TYPE TIMESTAMPTZ
        USING CAST(regexp_replace(created_at, '(\.[0-9]{6})[0-9]+', '\1') AS TIMESTAMPTZ),
    ALTER COLUMN expire_at TYPE TIMESTAMPTZ
        USING CAST(regexp_replace(expire_at, '(\.[0-9]{6})[0-9]+', '\1') AS TIMESTAMPTZ),
    ALTER COLUMN first_seen_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch'
        + (first_seen_at / 1000000000) * INTERVAL '1 second'
        + (first_seen_at % 1000000000 / 1000) * INTERVAL '1 microsecond',
    ALTER COLUMN last_seen_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch'
        + (last_seen_at / 1000000000) * INTERVAL '1 second'
        + (last_seen_at % 1000000000 / 1000) * INTERVAL '1 microsecond',
    ALTER COLUMN released_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch'
        + (released_at / 1000000000) * INTERVAL '1 second'
        + (released_at % 1000000000 / 1000) * INTERVAL '1 microsecond',
    ALTER COLUMN missed_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch'
        + (missed_at / 1000000000) * INTERVAL '1 second'
        + (missed_at % 1000000000 / 1000) * INTERVAL '1 microsecond',
    ALTER COLUMN public_ips TYPE JSONB USING CAST(public_ips AS JSONB),
    ALTER COLUMN private_ips TYPE JSONB USING CAST(private_ips AS JSONB),
    ALTER COLUMN tags TYPE JSONB USING CAST(tags AS JSONB),
    ALTER COLUMN security_groups TYPE JSONB USING CAST(security_groups AS JSONB),
    ALTER COLUMN key_pairs TYPE JSONB USING CAST(key_pairs AS JSONB),
    ALTER COLUMN extra TYPE JSONB USING CAST(extra AS JSONB);

ALTER TABLE cmdb_secrets
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch'
        + (created_at / 1000000000) * INTERVAL '1 second'
        + (created_at % 1000000000 / 1000) * INTERVAL '1 microsecond',
    ALTER COLUMN allowed_regions TYPE JSONB USING CAST(allowed_regions AS JSONB);

ALTER TABLE cmdb_scope_locks
    ALTER COLUMN acquired_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch'
        + (acquired_at / 1000000000) * INTERVAL '1 second'
        + (acquired_at % 1000000000 / 1000) * INTERVAL '1 microsecond',
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING TIMESTAMPTZ 'epoch'
        + (expires_at / 1000000000) * INTERVAL '1 second'
        + (expires_at % 1000000000 / 1000) * INTERVAL '1 microsecond';

-- The earlier runner's version table: gone, so that an older build connecting to this
-- database fails its own migrations instead of writing integers into these columns.
DROP TABLE IF EXISTS cmdb_schema_migrations;
