//! Serving prepared bytes (filled by the data-plane work).
