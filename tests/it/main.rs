//! Integration tests: the real `asycamore` binary on an ephemeral port, driven over TCP by a
//! raw client (see `support`). Each test starts its own server, so they run in parallel.

mod support;
mod sys;

mod abuse;
mod accept;
mod admin;
mod backpressure;
mod bad_input;
mod bench_tool;
mod check;
mod chunked;
mod cli;
mod concurrency;
mod conformance;
mod daemon;
mod keepalive;
mod limits;
mod logging;
mod logging_timing;
mod packaging;
mod packaging_man;
mod pipeline;
mod profile;
mod proxy;
mod proxy_failures;
mod proxy_rfc;
mod redirect;
mod reload;
mod routes;
mod shutdown;
mod static_files;
mod tidy;
mod timeouts;
mod upload;
