//! Request bodies shared by the REST surfaces (`/api` and `/rest`).

use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    domain::{EndpointType, Progress},
    error::Result,
};

/// Create spec of a download session (a DownloadSessionModel; only
/// `library_item_id` is used, the other fields are accepted and ignored).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    /// The library item whose files the session downloads (required).
    #[schema(example = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79")]
    pub library_item_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub id: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub library_item_content_version: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub error_message: Option<serde_json::Value>,
    #[schema(value_type = Option<i64>)]
    pub client_progress: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub state: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub expiration_time: Option<serde_json::Value>,
}

/// Body of keep-alive.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepAliveSpec {
    /// Client progress, 0..100.
    #[schema(minimum = 0, maximum = 100, example = 42)]
    pub progress: Option<i64>,
}

impl KeepAliveSpec {
    pub fn progress(&self) -> Result<Option<Progress>> {
        self.progress.map(Progress::new).transpose()
    }
}

/// Body of fail.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailSpec {
    pub client_error_message: Option<String>,
}

/// Body of prepare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareSpec {
    #[schema(example = "disk-0.vmdk")]
    pub file_name: String,
    /// `HTTPS` (default) or `DIRECT` (needs a session created with `ContentLibrary.ReadStorage`).
    // Read as text and parsed by the domain, so every surface answers a bad
    // value with the same error.
    #[schema(value_type = Option<EndpointType>)]
    endpoint_type: Option<String>,
}

impl PrepareSpec {
    pub fn endpoint_type(&self) -> Result<Option<EndpointType>> {
        self.endpoint_type.as_deref().map(str::parse).transpose()
    }
}
