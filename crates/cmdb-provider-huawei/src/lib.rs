//! cmdb host provider for Huawei Cloud (being built).
