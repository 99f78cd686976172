//! What every test binary shares: fresh databases, test bytes, and one client per wire
//! surface with a method per operation, so that tests read as scenarios.
//!
//! `tests/api` (in-process instances) and `tests/failover.rs` (real processes) both
//! include this module; each uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod api;
pub mod bytes;
pub mod db;
pub mod http;
pub mod raw;
pub mod rest;
pub mod rpc;

pub use self::{api::Api, bytes::*, db::*, http::Http, rest::Rest, rpc::Rpc};
