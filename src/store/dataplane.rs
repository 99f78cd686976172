//! Lookups of the download path (filled by the data-plane work).
