//! The rig: starts every server, loads the fixtures, and tears it all down.
//!
//! One job per module: `options` (what to run), `start` (the start-up
//! sequence), `handle` (the running [`Rig`] and its drop order), `issuers`,
//! `basic`, `cdn_wiring`, `https` and `mirrors` (what each kind of
//! registry needs besides itself), `setups` (each registry's config), `processes`
//! (starting them), `load` (the fixtures), `describe` (the [`RigInfo`](crate::RigInfo)).

mod basic;
mod cdn_wiring;
mod describe;
mod handle;
mod https;
mod issuers;
mod load;
mod mirrors;
mod options;
mod processes;
mod setups;
mod start;
mod upload;

pub use handle::Rig;
pub use options::RigOptions;
pub use upload::Upload;
