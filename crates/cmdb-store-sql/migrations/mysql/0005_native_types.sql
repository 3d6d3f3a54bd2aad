-- Version 5: native types, for people and tools reading the tables. Times become
-- DATETIME(6) in UTC (kept to the microsecond), JSON columns JSON. Values are
-- converted in place, each time column in three steps: to text, to the text of a
-- DATETIME ('YYYY-MM-DD HH:MM:SS.ffffff', the same whatever the session's time zone),
-- to DATETIME(6). The indexes on converted columns are kept.
--
-- A bookkeeping time was nanoseconds since the epoch, counted in whole microseconds
-- from 1970-01-01 (integer arithmetic). A host's created_at and expire_at were RFC 3339
-- text in UTC ("...Z", up to nine decimals), cut to six.

ALTER TABLE cmdb_hosts
    MODIFY first_seen_at VARCHAR(32) NOT NULL,
    MODIFY last_seen_at VARCHAR(32) NOT NULL,
    MODIFY released_at VARCHAR(32) NULL,
    MODIFY missed_at VARCHAR(32) NULL;

UPDATE cmdb_hosts SET
    created_at = SUBSTRING(REPLACE(REPLACE(created_at, 'T', ' '), 'Z', ''), 1, 26),
    expire_at = SUBSTRING(REPLACE(REPLACE(expire_at, 'T', ' '), 'Z', ''), 1, 26),
    first_seen_at = DATE_FORMAT(DATE_ADD('1970-01-01 00:00:00',
        INTERVAL (CAST(first_seen_at AS SIGNED) DIV 1000) MICROSECOND), '%Y-%m-%d %H:%i:%s.%f'),
    last_seen_at = DATE_FORMAT(DATE_ADD('1970-01-01 00:00:00',
        INTERVAL (CAST(last_seen_at AS SIGNED) DIV 1000) MICROSECOND), '%Y-%m-%d %H:%i:%s.%f'),
    released_at = DATE_FORMAT(DATE_ADD('1970-01-01 00:00:00',
        INTERVAL (CAST(released_at AS SIGNED) DIV 1000) MICROSECOND), '%Y-%m-%d %H:%i:%s.%f'),
    missed_at = DATE_FORMAT(DATE_ADD('1970-01-01 00:00:00',
        INTERVAL (CAST(missed_at AS SIGNED) DIV 1000) MICROSECOND), '%Y-%m-%d %H:%i:%s.%f');

ALTER TABLE cmdb_hosts
    MODIFY created_at DATETIME(6) NULL,
    MODIFY expire_at DATETIME(6) NULL,
    MODIFY first_seen_at DATETIME(6) NOT NULL,
    MODIFY last_seen_at DATETIME(6) NOT NULL,
    MODIFY released_at DATETIME(6) NULL,
    MODIFY missed_at DATETIME(6) NULL,
    MODIFY public_ips JSON NOT NULL,
    MODIFY private_ips JSON NOT NULL,
    MODIFY tags JSON NOT NULL,
    MODIFY security_groups JSON NOT NULL,
    MODIFY key_pairs JSON NOT NULL,
    MODIFY extra JSON NOT NULL;

ALTER TABLE cmdb_secrets MODIFY created_at VARCHAR(32) NOT NULL;

UPDATE cmdb_secrets SET
    created_at = DATE_FORMAT(DATE_ADD('1970-01-01 00:00:00',
        INTERVAL (CAST(created_at AS SIGNED) DIV 1000) MICROSECOND), '%Y-%m-%d %H:%i:%s.%f');

ALTER TABLE cmdb_secrets
    MODIFY created_at DATETIME(6) NOT NULL,
    MODIFY allowed_regions JSON NOT NULL;

ALTER TABLE cmdb_scope_locks
    MODIFY acquired_at VARCHAR(32) NOT NULL,
    MODIFY expires_at VARCHAR(32) NOT NULL;

UPDATE cmdb_scope_locks SET
    acquired_at = DATE_FORMAT(DATE_ADD('1970-01-01 00:00:00',
        INTERVAL (CAST(acquired_at AS SIGNED) DIV 1000) MICROSECOND), '%Y-%m-%d %H:%i:%s.%f'),
    expires_at = DATE_FORMAT(DATE_ADD('1970-01-01 00:00:00',
        INTERVAL (CAST(expires_at AS SIGNED) DIV 1000) MICROSECOND), '%Y-%m-%d %H:%i:%s.%f');

ALTER TABLE cmdb_scope_locks
    MODIFY acquired_at DATETIME(6) NOT NULL,
    MODIFY expires_at DATETIME(6) NOT NULL;

-- The earlier runner's version table: gone, so that an older build connecting to this
-- database fails its own migrations instead of writing integers into these columns.
DROP TABLE IF EXISTS cmdb_schema_migrations;
