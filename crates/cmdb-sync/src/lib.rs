//! cmdb-sync (in progress).
