//! One layer blob as a reader of its uncompressed tar bytes: the file is
//! read once, hashed (the blob digest), decompressed and hashed again (the
//! diff_id), and both are checked when the stream ends.

#![allow(dead_code)] // Until the orchestrator uses it.

use std::fs::File;
use std::io::{self, Read};

use super::media::Compression;
use crate::stevedore::cancel::Cancel;
use crate::stevedore::digest::Digest;
use crate::stevedore::error::{reason, Error, Result};

/// What the manifest and the config say of one layer.
pub struct Layer<'a> {
    pub digest: &'a Digest,
    pub size: u64,
    pub diff_id: &'a Digest,
    pub media_type: &'a str,
    pub compression: Compression,
}

/// Runs `consume` over the uncompressed bytes of the layer blob `blob`,
/// then reads whatever it left (hashing it) and checks the blob's size and
/// digest (`digest_mismatch`) and the diff_id (`diff_id_mismatch`). A blob
/// that does not match its digest is reported as that, even when its bytes
/// failed to decompress first. `read` gets the compressed bytes read so
/// far; `cancel` ends the read (`cancelled`).
pub fn read_layer<T>(
    blob: File,
    layer: &Layer<'_>,
    cancel: Option<&Cancel>,
    read: &(dyn Fn(u64) + Sync),
    consume: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    let _ = (blob, layer, cancel, read, consume);
    unimplemented!()
}

/// An error from the layer reader as tank's: one of tank's own carried in
/// the `io::Error` (a cancel, a file that cannot be read) passes through; a
/// stream that ends early is `bad_layer` ("truncated"); anything else the
/// decompressor said is `bad_layer`.
pub fn read_error(e: io::Error) -> Error {
    if let Some(ours) = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        return ours.clone();
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return Error::layer(
            reason::BAD_LAYER,
            format!("truncated: the layer stream ends early ({e})"),
        );
    }
    Error::layer(
        reason::BAD_LAYER,
        format!("the layer's bytes are not what its media type says: {e}"),
    )
}
