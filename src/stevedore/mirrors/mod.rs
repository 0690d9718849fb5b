//! Mirrors and pull-through caches, read from the files users already keep.

pub mod hosts_toml;
