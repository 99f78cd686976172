//! The HTTP surfaces. Each surface module translates one wire format to the service
//! core and back; what they share lives beside them:
//!
//! - `extract`: typed extractors (caller, ids, query, bounded JSON bodies, actions) and
//!   the route helpers that extract them in order;
//! - `errors`: how each surface renders an error, and the error responses it documents;
//! - `wire`: the request and response types `/api` and `/rest` share.
//!
//! Each surface's wire types carry both serde and `ToSchema`: what is (de)serialized is
//! what `crate::openapi` collects, and nothing here imports that module.

pub mod errors;
pub mod extract;
pub mod jsonrpc;
pub mod ops;
// The surfaces are laid out by hand: one block per operation, its signature on one
// line (rustfmt would stretch each over five and make the operations hard to scan).
#[rustfmt::skip]
pub mod rest_api;
#[rustfmt::skip]
pub mod rest_legacy;
pub mod wire;

use crate::service::Service;

/// Header (and cookie) carrying the login token.
pub const SESSION_HEADER: &str = "vmware-api-session-id";

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub max_body: usize,
}
