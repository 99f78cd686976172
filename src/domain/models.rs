//! The contract's data structures as clients see them (VMware's field names).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use super::{EndpointType, PrepareStatus, SessionState};
use crate::error::LocalizableMessage;

/// RFC 3339 UTC with milliseconds, as vSphere writes date-times.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ser_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

/// `com.vmware.content.library.item.download_session_model`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "library_item_id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79",
    "library_item_content_version": "1",
    "client_progress": 0,
    "state": "ACTIVE",
    "expiration_time": "2030-01-01T00:05:00.000Z"
}))]
pub struct DownloadSessionModel {
    /// Identifier of the session (absent from get and list answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The library item whose files the session downloads.
    pub library_item_id: String,
    /// Content version of the item when the session was created.
    pub library_item_content_version: String,
    /// Set when the session is in state ERROR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<LocalizableMessage>,
    /// Client-reported progress, 0..100.
    pub client_progress: i64,
    pub state: SessionState,
    /// The session will not expire before this time (renewed by activity).
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub expiration_time: DateTime<Utc>,
}

/// Checksum algorithm of `checksum_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ChecksumAlgorithm {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

/// `com.vmware.content.library.item.file.checksum_info`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecksumInfo {
    /// Absent means SHA1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<ChecksumAlgorithm>,
    /// Lower-case hex digest.
    pub checksum: String,
}

impl ChecksumInfo {
    pub fn sha256(hex: &str) -> Self {
        ChecksumInfo {
            algorithm: Some(ChecksumAlgorithm::Sha256),
            checksum: hex.to_string(),
        }
    }
}

/// `com.vmware.content.library.item.transfer_endpoint`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferEndpoint {
    /// Where to GET the bytes.
    pub uri: String,
    /// SHA-1 thumbprint of the server certificate, colon-separated upper-case hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_certificate_thumbprint: Option<String>,
    /// The server certificate, PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_certificate: Option<String>,
}

/// `com.vmware.content.library.item.downloadsession.file.info`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "disk-0.vmdk",
    "size": 10485760,
    "bytes_transferred": 10485760,
    "status": "PREPARED",
    "download_endpoint": {
        "uri": "https://vc.example.com/cls/data/AQID.../disk-0.vmdk",
        "ssl_certificate_thumbprint": "3A:1F:...:9C"
    },
    "checksum_info": {"algorithm": "SHA256", "checksum": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
}))]
pub struct DownloadFileInfo {
    pub name: String,
    /// Size in bytes, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Bytes the server has moved to make the file ready.
    pub bytes_transferred: i64,
    pub status: PrepareStatus,
    /// Only when PREPARED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_endpoint: Option<TransferEndpoint>,
    /// SHA256 of the content, once PREPARED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_info: Option<ChecksumInfo>,
    /// Only in ERROR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<LocalizableMessage>,
}

/// `com.vmware.content.library_model.library_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LibraryType {
    Local,
    Subscribed,
}

/// `com.vmware.content.library.storage_backing.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageBackingType {
    Datastore,
    Other,
}

/// `com.vmware.content.library.storage_backing`: where a library's (or a
/// file's) bytes live. Here always `OTHER`: the service's content store,
/// with its URI when clients can use one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"type": "OTHER", "storage_uri": "s3://dls-content/"}))]
pub struct StorageBacking {
    #[serde(rename = "type")]
    pub backing_type: StorageBackingType,
    /// Only for `DATASTORE` (never here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datastore_id: Option<String>,
    /// The content store as clients may address it (`s3://bucket/`, or
    /// `storage.content.direct_base`); absent for a local store without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_uri: Option<String>,
}

/// `com.vmware.content.library.publish_info.authentication_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthenticationMethod {
    Basic,
    None,
}

/// `com.vmware.content.library.publish_info`: libraries here are never published.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"authentication_method": "NONE", "published": false, "persist_json_enabled": false}))]
pub struct PublishInfo {
    pub authentication_method: AuthenticationMethod,
    pub published: bool,
    pub persist_json_enabled: bool,
}

impl PublishInfo {
    /// What every library here answers.
    pub fn unpublished() -> Self {
        PublishInfo {
            authentication_method: AuthenticationMethod::None,
            published: false,
            persist_json_enabled: false,
        }
    }
}

/// `com.vmware.content.library_model`, as `get` answers it for a local library.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98",
    "name": "isos",
    "description": "Installer images",
    "type": "LOCAL",
    "creation_time": "2030-01-01T00:00:00.000Z",
    "last_modified_time": "2030-01-01T00:00:00.000Z",
    "version": "1",
    "server_guid": "0f3e1a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
    "storage_backings": [{"type": "OTHER", "storage_uri": "s3://dls-content/"}],
    "publish_info": {"authentication_method": "NONE", "published": false, "persist_json_enabled": false}
}))]
pub struct LibraryModel {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Always `LOCAL` here.
    #[serde(rename = "type")]
    pub library_type: LibraryType,
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub creation_time: DateTime<Utc>,
    /// Changes with the library's own properties (not with its items).
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub last_modified_time: DateTime<Utc>,
    /// Grows on every change of the library's properties; send it back in an
    /// update to detect concurrent changes.
    pub version: String,
    /// The same for every library of this service (all its instances).
    pub server_guid: String,
    /// Where the library's bytes live: the service's content store.
    pub storage_backings: Vec<StorageBacking>,
    pub publish_info: PublishInfo,
}

/// `com.vmware.content.library.item_model`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79",
    "library_id": "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98",
    "name": "photon",
    "type": "iso",
    "description": "",
    "size": 10485760,
    "cached": true,
    "content_version": "1",
    "metadata_version": "1",
    "version": "1",
    "creation_time": "2030-01-01T00:00:00.000Z",
    "last_modified_time": "2030-01-01T00:00:00.000Z"
}))]
pub struct ItemModel {
    pub id: String,
    pub library_id: String,
    pub name: String,
    /// `ovf`, `iso`, ... or `file` for generic content.
    #[serde(rename = "type")]
    pub item_type: String,
    pub description: String,
    /// Total size of the current content version's files.
    pub size: i64,
    /// Grows with every new list of files (an import, a completed upload).
    pub content_version: String,
    /// Grows with every change of the item's properties (name, description, type).
    pub metadata_version: String,
    /// Grows with every change of the item's properties, not with its content;
    /// send it back in an update to detect concurrent changes.
    pub version: String,
    /// Whether the files are present in the content store (always true here).
    pub cached: bool,
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub creation_time: DateTime<Utc>,
    /// Changes with the item's properties and with its content.
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub last_modified_time: DateTime<Utc>,
}

/// `com.vmware.content.library.item.storage.info`: one file of an item as it
/// lies in the content store.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "storage_backing": {"type": "OTHER", "storage_uri": "s3://dls-content/"},
    "storage_uris": ["s3://dls-content/blobs/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    "checksum_info": {"algorithm": "SHA256", "checksum": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
    "name": "disk-0.vmdk",
    "size": 10485760,
    "cached": true,
    "version": "1"
}))]
pub struct StorageInfo {
    pub storage_backing: StorageBacking,
    /// URIs of the file's bytes that clients can use; empty when the content
    /// store is a local directory without `storage.content.direct_base`.
    pub storage_uris: Vec<String>,
    pub checksum_info: ChecksumInfo,
    pub name: String,
    pub size: i64,
    pub cached: bool,
    /// The item's content version that brought this copy of the file.
    pub version: String,
}

/// `com.vmware.content.library.item.file_model` (item file info).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemFileInfo {
    pub name: String,
    pub size: i64,
    pub checksum_info: ChecksumInfo,
    pub cached: bool,
    pub version: String,
}

/// Who a login token belongs to (`GET /api/session`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub user: String,
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_time: DateTime<Utc>,
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub last_accessed_time: DateTime<Utc>,
}

/// A file's current prepare state as the store holds it; the core turns it
/// into a [`DownloadFileInfo`] (adding the endpoint) for clients.
#[derive(Clone, Debug)]
pub struct FileState {
    pub name: String,
    pub size: Option<i64>,
    pub bytes_transferred: i64,
    pub status: PrepareStatus,
    pub endpoint_type: Option<EndpointType>,
    pub checksum: Option<String>,
    pub error_message: Option<LocalizableMessage>,
    /// Transfer-store key of the prepared bytes.
    pub artifact_key: Option<String>,
}

/// `com.vmware.content.library.item.update_session_model`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "library_item_id": "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79",
    "library_item_content_version": "1",
    "client_progress": 0,
    "state": "ACTIVE",
    "expiration_time": "2030-01-01T00:05:00.000Z"
}))]
pub struct UpdateSessionModel {
    /// Identifier of the session (absent from get answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The library item the session changes.
    pub library_item_id: String,
    /// Content version of the item when the session was created.
    pub library_item_content_version: String,
    /// Set when the session is in state ERROR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<LocalizableMessage>,
    /// Client-reported progress, 0..100.
    pub client_progress: i64,
    pub state: super::update::UpdateState,
    /// The session will not expire before this time (renewed by activity).
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub expiration_time: DateTime<Utc>,
}

/// `com.vmware.content.library.item.updatesession.file.info`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "photon.iso",
    "source_type": "PUSH",
    "size": 10485760,
    "bytes_transferred": 0,
    "status": "WAITING_FOR_TRANSFER",
    "upload_endpoint": {"uri": "https://cls.example.com/cls/upload/AQID.../photon.iso"},
    "keep_in_storage": false
}))]
pub struct UpdateFileInfo {
    pub name: String,
    pub source_type: super::update::SourceType,
    /// The size declared by `add`, or the bytes received once READY.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// SHA256 declared by `add`, or of the bytes received once READY.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_info: Option<ChecksumInfo>,
    /// Where to PUT or POST the bytes (PUSH, while the session is ACTIVE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_endpoint: Option<TransferEndpoint>,
    pub bytes_transferred: i64,
    pub status: super::update::TransferStatus,
    /// Only in ERROR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<LocalizableMessage>,
    /// Always false: a file not kept in storage is not supported.
    pub keep_in_storage: bool,
}

/// `com.vmware.content.library.item.updatesession.file.validation_error`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidationError {
    pub name: String,
    pub error_message: LocalizableMessage,
}

/// `com.vmware.content.library.item.updatesession.file.validation_result`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"has_errors": true, "missing_files": ["photon.iso"], "invalid_files": []}))]
pub struct ValidationResult {
    pub has_errors: bool,
    /// Files added whose bytes have not (all) arrived.
    pub missing_files: Vec<String>,
    /// Files whose upload failed, with why.
    pub invalid_files: Vec<ValidationError>,
}
