//! SQL stores for cmdb (being built).
