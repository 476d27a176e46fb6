//! `skiff-streaming`: the byte-stream side of Kubernetes.
//!
//! `kubectl logs`, `exec`, `attach`, `cp` and `port-forward` reach a
//! container through the API server, which passes the (upgraded)
//! connection through to the node's HTTPS server. This crate holds both
//! ends' shared protocol code and the node-side handlers:
//!
//! - [`spdy`]: SPDY/3.1 framing, zlib header blocks with the SPDY/3
//!   dictionary, and a server connection with streams and flow control.
//! - [`channel`]: the Kubernetes channel protocols over WebSocket
//!   (`v5.channel.k8s.io` down to `channel.k8s.io`, plus base64 variants).
//! - [`ws`]: WebSocket upgrades on hyper, and a byte pipe over binary
//!   messages (kubectl 1.31+ tunnels SPDY through WebSocket).
//! - [`remotecommand`]: exec and attach, independent of the transport.
//! - [`portforward`]: port-forward over SPDY and over WebSocket, with the
//!   connection made inside the pod's network namespace.
//! - [`logs`]: reading CRI log files as the kubelet prints them.
//! - [`kubelet`]: the node's router (`/containerLogs`, `/exec`, `/attach`,
//!   `/portForward`, `/stats/summary`) and its TLS listener.
//! - [`stats`]: the kubelet's `/stats/summary` document.

pub mod channel;
pub mod kubelet;
pub mod logs;
pub mod portforward;
pub mod remotecommand;
pub mod spdy;
pub mod stats;
pub mod status;
pub mod ws;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

/// Response bodies of the node's handlers.
pub type Body = BoxBody<Bytes, Infallible>;

pub use kubelet::{ContainerRef, Kubelet, PodLookup};
