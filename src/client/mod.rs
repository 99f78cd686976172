//! The client side of the same binary: commands that speak only the public
//! `/api` surface, so they work against this service and against vCenter.
//!
//! `api` (login, calls, errors), `tls` (trust options), `progress` (bars,
//! plain lines, JSON) and `transfer` (verified, resumable transfers) are
//! shared by every command; `export` is the first of them.

pub mod api;
pub mod content;
pub mod export;
pub mod failure;
pub mod progress;
pub mod tls;
pub mod transfer;

pub use export::ExportArgs;
pub use failure::{Failure, FailureKind};
