//! `skiff-runtime`: Skiff's built-in container runtime.
//!
//! The kubelet talks to containers only through [`RuntimeService`], a trait
//! shaped like the CRI's RuntimeService but free of Kubernetes types. The
//! Linux implementation, [`LinuxRuntime`], sets containers up itself (no
//! runc): every fork happens in a freshly exec'd, single-threaded helper
//! process (`skiff runtime-init`, see [`init`]), never in the multi-threaded
//! async process, because after `fork` only async-signal-safe code may run
//! in a child of a threaded process, and container setup (mounts, reading
//! files, logging) is not that.
//!
//! Module map: [`types`] (configs and status), [`service`] (the trait),
//! [`linux`] (the implementation), [`sandbox`] (network namespaces),
//! [`cgroups`] (v1 and v2 behind one trait), [`init`] (the helper:
//! [`namespaces`], [`mounts`], [`process`]), [`logs`] (CRI log files),
//! [`user`] (user and group resolution from the rootfs), [`state`] (records
//! on disk that let a new runtime process adopt running containers).

pub mod caps_set;
pub mod cgroups;
pub mod error;
pub mod init;
pub mod linux;
pub mod logs;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod sandbox;
pub mod service;
pub mod spec;
pub mod state;
pub mod types;
pub mod user;

pub use error::{Error, Result};
pub use linux::{LinuxRuntime, RuntimeConfig};
pub use service::RuntimeService;
pub use types::*;
