//! Registration of the aliyun provider (being built).
