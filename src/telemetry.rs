//! Tracing subscriber: JSON lines in production, human-readable on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::config::LogSettings;

/// Installs the global subscriber once; later calls are no-ops (tests call it repeatedly).
pub fn init(settings: &LogSettings) {
    // sqlx reports every migration notice at INFO; only its warnings matter to
    // operators. actix reports each download cut short (a revoked URI, a client
    // gone) as an ERROR; the data plane logs every transfer's outcome itself.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "sqlx=warn,actix_http::h1::dispatcher=off,{}",
            settings.level
        ))
    });
    let json = match settings.format.as_str() {
        "json" => true,
        "pretty" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
}
