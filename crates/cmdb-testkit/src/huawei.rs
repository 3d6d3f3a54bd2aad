//! A simulated Huawei Cloud ECS API (being built).
