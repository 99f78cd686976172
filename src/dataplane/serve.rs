//! Serving prepared bytes at `/cls/data/{token}/{file_name}`.

use actix_web::web;

/// Registers the data-plane routes.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
