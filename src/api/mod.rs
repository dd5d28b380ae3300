//! The local control API: newline-delimited JSON over a Unix socket (mode
//! 0660). One [`Request`] per line, one [`Response`] per line.
//!
//! * [`server`]: the daemon's side, which forwards each request to the
//!   router task;
//! * [`views`]: the typed answers (`show neighbors`, `show routes`, …), the
//!   one definition of the JSON the API speaks, read back by the same types;
//! * [`client`]: one request, one typed answer: what the CLI uses, and
//!   what any other reader of the API (`kroute lab`, tests, the benchmark)
//!   should use instead of reading the JSON by key.

pub mod client;
pub mod server;
pub mod views;

pub use crate::events::{Request, Response};
pub use client::{call, Client, ClientError};
pub use server::{bind, serve};
pub use views::{
    ExplainView, FibEntryView, GracefulRestartView, NeighborView, ReloadView, RouteView,
};
