//! cmdb host provider for Aliyun Cloud (being built).
