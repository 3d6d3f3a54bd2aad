//! cmdb host provider for Tencent Cloud (being built).
