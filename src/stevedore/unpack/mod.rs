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

use std::path::Path;

use super::cancel::Cancel;
use super::error::Result;
use super::manifest::Manifest;
use super::progress::ProgressFn;

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

/// One unpack under way: the temporary tree beside `rootfs` and the
/// layers applied so far. Dropped before `commit`, it removes that tree and
/// leaves `rootfs` as it was. `tank_unpack` and `tank_pull_unpack` both
/// drive one; its calls block (run them off the async workers).
#[allow(dead_code)] // Until tank_unpack and tank_pull_unpack drive it.
pub(crate) struct Unpacking {
    _private: (),
}

#[allow(dead_code)]
impl Unpacking {
    /// Checks `rootfs` (absent, or present with `options.replace`) and makes
    /// the temporary sibling tree.
    pub(crate) fn begin(rootfs: &Path, options: Options) -> Result<Unpacking> {
        let _ = (rootfs, options);
        unimplemented!()
    }

    /// Applies one layer from the blob file `blob`; `read` gets the
    /// layer's compressed bytes read so far.
    pub(crate) fn apply(
        &mut self,
        blob: &Path,
        layer: &image::LayerPlan,
        cancel: Option<&Cancel>,
        read: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let _ = (blob, layer, cancel, read);
        unimplemented!()
    }

    /// Directories' modes and times, then the tree renamed into place (or
    /// exchanged with the old one, which is then removed).
    pub(crate) fn commit(self) -> Result<()> {
        unimplemented!()
    }
}

/// Unpacks the image `image` of the OCI layout `layout` into the new
/// directory `rootfs`. Returns the image manifest unpacked.
pub async fn unpack(
    layout: &Path,
    image: &str,
    rootfs: &Path,
    options: Options,
    cancel: Option<&Cancel>,
    progress: Option<ProgressFn>,
) -> Result<Manifest> {
    let _ = (layout, image, rootfs, options, cancel, progress);
    Err(super::error::Error::internal(
        "unimplemented",
        "tank_unpack is not built yet",
    ))
}
