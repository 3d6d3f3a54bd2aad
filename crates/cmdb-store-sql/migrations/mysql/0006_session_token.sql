-- Version 6: the session token of temporary (STS) credentials, as ciphertext like
-- api_secret (never in clear); NULL for a secret without one.

ALTER TABLE cmdb_secrets ADD COLUMN session_token LONGTEXT NULL;
