//! kroute: a BGP node router for bare-metal Kubernetes.
//!
//! The daemon, its config, its control API and `kroute lab` as a library,
//! so that `src/main.rs`, the integration tests and the benchmark all use
//! the same types. How the daemon's tasks talk is in [`events`].

pub mod api;
pub mod bfd;
pub mod bmp;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod events;
pub mod http;
pub mod kubernetes;
pub mod lab;
pub mod metrics;
pub mod notify;
pub mod output;

pub(crate) mod domains;
pub(crate) mod dynamic;
pub(crate) mod ifaddrs;
pub(crate) mod listener;
pub(crate) mod pending;
pub(crate) mod rib_task;
pub(crate) mod session;
pub(crate) mod sock_diag;
pub(crate) mod unnumbered;
