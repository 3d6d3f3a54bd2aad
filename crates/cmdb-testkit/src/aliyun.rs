//! A simulated Alibaba Cloud ECS API (being built).
