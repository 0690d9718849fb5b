//! The entries of one layer applied onto the tree under construction.

#![allow(dead_code)] // Until the orchestrator uses it.

use std::io::Read;
use std::os::fd::OwnedFd;

use super::Options;
use crate::stevedore::cancel::Cancel;
use crate::stevedore::error::Result;

/// The tree under construction: the root directory fd, and what is set on
/// directories only once every layer is in (modes and times).
pub struct Tree {
    root: OwnedFd,
    options: Options,
}

impl Tree {
    pub fn new(root: OwnedFd, options: Options) -> Tree {
        Tree { root, options }
    }

    /// Applies one layer's tar stream, read up to its end-of-archive
    /// marker. Errors name the entry at fault.
    pub fn apply_layer(&mut self, tar: &mut dyn Read, cancel: Option<&Cancel>) -> Result<()> {
        let _ = (tar, cancel);
        unimplemented!()
    }

    /// Sets each directory's mode and times, deepest first, after its
    /// contents.
    pub fn finish(self) -> Result<()> {
        unimplemented!()
    }
}
