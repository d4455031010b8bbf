//! asycamore: a specialised, poll-driven HTTP/1.1 server and the library it is built on.
//!
//! Layers, inner to outer; each may use the ones before it, never the ones after
//! (`docs/ARCHITECTURE.md` has the map and the rules, and `tests/it/tidy.rs` checks them):
//!
//! 1. [`reactor`]: the dispatch main loop (mio), usable without HTTP.
//! 2. [`http1`]: HTTP/1.1 message boundaries over bytes, no I/O.
//! 3. [`service`]: the service model, how handlers see requests and write responses.
//! 4. [`server`]: connections, workers and listeners joining the three.
//! 5. [`handlers`]: the built-in handlers configuration can name.
//! 6. [`config`]: the TOML file, its validation, and the build into server values.
//! 7. [`admin`]: the admin port (metrics, health, reload, introspection, profiling).
//! 8. [`daemon`]: process lifecycle for the `asycamore` binary.
//!
//! Data flows one way: bytes in -> `http1` parses -> `server` routes -> handler ->
//! `service::ResponseWriter` encodes -> bytes out.

#![warn(missing_docs)]

pub mod admin;
pub mod config;
pub mod daemon;
pub mod handlers;
pub mod http1;
mod log_rate;
pub mod reactor;
pub mod server;
pub mod service;
