//! Background work of an instance: prepare workers and the maintenance pass.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{service::Service, storage::Stores};

/// Starts this instance's background tasks; they stop when `stop` is cancelled.
pub fn spawn(_service: &Service, _stores: &Stores, _stop: &CancellationToken) -> Vec<JoinHandle<()>> {
    Vec::new()
}
