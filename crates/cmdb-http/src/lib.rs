//! cmdb-http (in progress).
