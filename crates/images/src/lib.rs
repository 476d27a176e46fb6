//! Skiff's image half: an OCI image-layout store on disk, layer snapshots,
//! overlay root filesystems, archives and a distribution-spec client.
//!
//! Layout under `<data-dir>/images/` (an OCI image layout, so `skopeo`,
//! `umoci` and friends can read it with `oci:<dir>`):
//!
//! ```text
//! oci-layout, index.json        named images (`org.opencontainers.image.ref.name`)
//! blobs/sha256/<hex>            every blob, content addressed, verified on write and read
//! snapshots/<chain-id-hex>/     each layer unpacked once, overlay-ready (whiteouts as 0/0 devices)
//! ingest/                       temporary files, renamed into place when verified
//! ```

pub mod archive;
pub mod client;
pub mod digest;
mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod oci;
pub mod reference;
pub mod rootfs;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub use store::{Image, Store};
