//! cmdb-testkit (in progress).
