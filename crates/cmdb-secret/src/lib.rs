//! cmdb-secret (in progress).
