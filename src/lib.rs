//! cmdb facade (in progress).
