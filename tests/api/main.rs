//! Integration tests: one binary, the real application on port 0, a fresh database per test.

#[path = "../common/mod.rs"]
pub mod common;

mod big;
mod catalog;
mod download;
mod edge;
mod fuzz_regressions;
mod govc;
mod helpers;
mod jsonrpc;
mod login;
mod openapi;
mod ops;
mod rest_legacy;
mod s3;
mod sessions;
mod store;
mod tls;
mod updates;
mod validity;
mod worker;
