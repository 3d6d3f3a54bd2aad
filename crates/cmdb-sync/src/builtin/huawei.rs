//! Registration of the huawei provider (being built).
