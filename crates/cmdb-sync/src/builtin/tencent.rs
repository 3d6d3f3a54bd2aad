//! Registration of the tencent provider (being built).
