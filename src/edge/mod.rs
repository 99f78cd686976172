//! The HTTP edge: what every connection and request goes through before a surface
//! sees it (the cap on open connections, how fast bodies must arrive, who the client is).

pub mod body;
pub mod client;
pub mod connections;
pub mod csrf;

use actix_web::http::Method;

/// A request's method as a metrics label or log field: one of the methods HTTP
/// defines, else `other`. actix accepts any token as a method, and a label per
/// token would let any client grow the metrics without bound.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}
