//! cmdb host provider for VMware vSphere (being built).
