//! Mirrors and pull-through caches, from the files users already keep.

pub mod hosts_toml;
pub mod load;
pub mod registries_conf;
pub mod sources;
