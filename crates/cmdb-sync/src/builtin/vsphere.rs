//! Registration of the vsphere provider (being built).
