//! Root filesystems: an image's layers, read from an OCI image layout and
//! applied in order into a new directory, each in one streaming pass that
//! checks the blob's digest and its diff_id, safe against hostile layers.
//!
//! The parts, one job each:
//! - `image`: finds the image in the layout and pairs its layers with the
//!   config's diff_ids.
//! - `media`: what a layer's media type says about its compression.
//! - `stream`: one layer blob, hashed, decompressed and hashed again, as a
//!   reader of tar bytes.
//! - `tar_stream`: tar headers parsed (by the `tar` crate) with bounded
//!   extension headers, entry by entry.
//! - `root`: file operations confined to a directory fd (`openat2`
//!   `RESOLVE_IN_ROOT`, or a component-by-component walk).
//! - `apply`: the entries of one layer onto the tree: whiteouts, links,
//!   owners, xattrs, times.
//! - `swap`: the temporary sibling tree and its rename into place.

mod apply;
pub(crate) mod image;
mod media;
mod root;
mod stream;
mod swap;
mod tar_stream;

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;

use super::blocking::blocking;
use super::cancel::Cancel;
use super::error::{Error, ErrorKind, Result};
use super::manifest::Manifest;
use super::progress::{Progress, ProgressFn};
use super::store;

/// How a tree is unpacked (the C flags `TANK_UNPACK_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Owners from the layer (`lchown`, numeric ids), device nodes, and
    /// every xattr: needs root.
    pub keep_owners: bool,
    /// An existing `rootfs` is replaced (it stays whole until the new tree
    /// is).
    pub replace: bool,
}

impl Options {
    /// What the caller may ask for: keeping the layer's owners needs root,
    /// and is refused before any work rather than failing at the first
    /// `lchown`.
    pub(crate) fn check(self) -> Result<()> {
        if self.keep_owners && !rustix::process::geteuid().is_root() {
            return Err(Error::bad_input(
                "TANK_UNPACK_KEEP_OWNERS needs root (the effective uid is not 0)",
            ));
        }
        Ok(())
    }
}

/// One unpack under way: the temporary tree beside `rootfs` and the
/// layers applied so far. Dropped before `commit`, it removes that tree and
/// leaves `rootfs` as it was. `tank_unpack` and `tank_pull_unpack` both
/// drive one; its calls block (run them off the async workers).
pub(crate) struct Unpacking {
    // Dropped in order: the tree (and its fds) before the swap removes it.
    tree: apply::Tree,
    /// The root directory, for its mode once the layers are in.
    root: OwnedFd,
    swap: swap::Swap,
}

impl Unpacking {
    /// Checks the options and `rootfs` (absent, or present with
    /// `options.replace`) and makes the temporary sibling tree.
    pub(crate) fn begin(rootfs: &Path, options: Options) -> Result<Unpacking> {
        options.check()?;
        let (swap, root) = swap::Swap::begin(rootfs, options.replace)?;
        let for_tree = root
            .try_clone()
            .map_err(|e| Error::io("opening", &swap.temp_path(), &e))?;
        Ok(Unpacking {
            tree: apply::Tree::new(for_tree, options),
            root,
            swap,
        })
    }

    /// Applies one layer from the blob file `blob`; `read` gets the
    /// layer's compressed bytes read so far. Errors name the layer.
    pub(crate) fn apply(
        &mut self,
        blob: &Path,
        layer: &image::LayerPlan,
        cancel: Option<&Cancel>,
        read: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(Error::cancelled());
        }
        let described = stream::Layer {
            digest: &layer.digest,
            size: layer.size,
            diff_id: &layer.diff_id,
            media_type: &layer.media_type,
            compression: layer.compression,
        };
        let tree = &mut self.tree;
        image::open_regular(blob)
            .and_then(|file| {
                stream::read_layer(file, &described, cancel, read, |tar| {
                    tree.apply_layer(tar, cancel)
                })
            })
            .map_err(|e| naming_layer(e, layer))
    }

    /// Directories' modes and times, then the tree renamed into place (or
    /// exchanged with the old one, which is then removed).
    pub(crate) fn commit(self) -> Result<()> {
        let Unpacking { tree, root, swap } = self;
        // Before `finish`, which gives the root a layer's `./` mode when
        // one has it.
        rustix::fs::fchmod(
            &root,
            rustix::fs::Mode::from_raw_mode(swap::DEFAULT_ROOT_MODE),
        )
        .map_err(|e| Error::io("setting the mode of", &swap.temp_path(), &e.into()))?;
        drop(root);
        tree.finish()?;
        swap.commit()
    }
}

/// "layer 2 (sha256:…): …"; a cancel stays the plain cancel.
fn naming_layer(e: Error, layer: &image::LayerPlan) -> Error {
    if e.kind == ErrorKind::Cancelled {
        return e;
    }
    Error {
        message: format!("layer {} ({}): {}", layer.position, layer.digest, e.message),
        ..e
    }
}

/// Unpacks the image `image` of the OCI layout `layout` into the new
/// directory `rootfs`. Returns the image manifest unpacked. The work runs
/// on a blocking thread and is awaited to its end: when this returns,
/// nothing touches the files.
pub async fn unpack(
    layout: &Path,
    image: &str,
    rootfs: &Path,
    options: Options,
    cancel: Option<&Cancel>,
    progress: Option<ProgressFn>,
) -> Result<Manifest> {
    let (layout, image, rootfs) = (layout.to_path_buf(), image.to_owned(), rootfs.to_path_buf());
    let cancel = cancel.cloned();
    blocking(move || unpack_blocking(&layout, &image, &rootfs, options, cancel.as_ref(), progress))
        .await?
}

fn unpack_blocking(
    layout: &Path,
    image: &str,
    rootfs: &Path,
    options: Options,
    cancel: Option<&Cancel>,
    progress: Option<ProgressFn>,
) -> Result<Manifest> {
    options.check()?;
    swap::check_name(rootfs)?;
    if cancel.is_some_and(Cancel::is_cancelled) {
        return Err(Error::cancelled());
    }
    let found = image::find(layout, image)?;
    let total = found
        .layers
        .iter()
        .try_fold(0u64, |sum, l| sum.checked_add(l.size))
        .ok_or_else(|| Error::bad_input("the image's layer sizes add up to more than a u64"))?;
    let mut unpacking = Unpacking::begin(rootfs, options)?;
    let mut reporting = Progress::new(progress);
    reporting.set_total(total);
    // Reports come from the thread that reads the blob.
    let reporting = Mutex::new(reporting);
    let mut before = 0u64;
    for layer in &found.layers {
        let report = |read: u64| {
            let mut p = reporting.lock().unwrap_or_else(|p| p.into_inner());
            p.update(before + read.min(layer.size));
        };
        let blob = store::blob_path(layout, &layer.digest);
        unpacking.apply(&blob, layer, cancel, &report)?;
        before += layer.size;
    }
    if cancel.is_some_and(Cancel::is_cancelled) {
        return Err(Error::cancelled());
    }
    unpacking.commit()?;
    reporting
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .finish(total);
    Ok(found.manifest)
}
