//! Mirrors and pull-through caches, from the files users already keep.

pub mod registries_conf;
