//! A simulated Tencent Cloud CVM API (being built).
