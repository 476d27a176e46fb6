//! SPDY/3.1, as Kubernetes still uses it: kubectl ≤1.29 runs exec and
//! attach over it, and every kubectl runs port-forward over it (raw, or
//! from 1.31 tunnelled in WebSocket). There is no maintained Rust crate.

pub mod conn;
pub mod frame;
pub mod headers;

pub use conn::{Connection, Stream, StreamReader, StreamWriter};
