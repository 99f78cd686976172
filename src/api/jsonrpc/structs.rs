//! The contract's structures under their canonical vAPI names, with each
//! field marked optional or required exactly as VMware's IDL (the SDK bindings) has it.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::value::{optional, set, structure, unset};
use crate::{
    domain::models::{
        format_time, ChecksumInfo, DownloadFileInfo, DownloadSessionModel, ItemFileInfo, ItemModel,
        LibraryModel, SessionInfo, TransferEndpoint,
    },
    error::LocalizableMessage,
};

/// A value the JSON-RPC surface can return.
pub trait ToVapi {
    fn to_vapi(&self) -> Value;
}

impl ToVapi for String {
    fn to_vapi(&self) -> Value {
        Value::String(self.clone())
    }
}

impl<T: ToVapi> ToVapi for Vec<T> {
    fn to_vapi(&self) -> Value {
        Value::Array(self.iter().map(ToVapi::to_vapi).collect())
    }
}

fn time(t: &DateTime<Utc>) -> Value {
    Value::String(format_time(t))
}

fn opt<T: ToVapi>(v: Option<&T>) -> Value {
    optional(v.map(ToVapi::to_vapi))
}

/// `com.vmware.vapi.std.localizable_message`.
impl ToVapi for LocalizableMessage {
    fn to_vapi(&self) -> Value {
        structure(
            "com.vmware.vapi.std.localizable_message",
            [
                ("id", Value::String(self.id.clone())),
                (
                    "default_message",
                    Value::String(self.default_message.clone()),
                ),
                ("args", self.args.to_vapi()),
                // Optional in the IDL: substitution parameters and a
                // server-localized text, neither of which this service produces.
                ("params", unset()),
                ("localized", unset()),
            ],
        )
    }
}

/// `com.vmware.content.library.item.download_session_model`: every field optional.
impl ToVapi for DownloadSessionModel {
    fn to_vapi(&self) -> Value {
        structure(
            "com.vmware.content.library.item.download_session_model",
            [
                ("id", opt(self.id.as_ref())),
                ("library_item_id", set(self.library_item_id.clone())),
                (
                    "library_item_content_version",
                    set(self.library_item_content_version.clone()),
                ),
                ("error_message", opt(self.error_message.as_ref())),
                ("client_progress", set(self.client_progress)),
                ("state", set(self.state.as_str())),
                ("expiration_time", set(time(&self.expiration_time))),
            ],
        )
    }
}

/// `com.vmware.content.library.item.downloadsession.file.info`.
impl ToVapi for DownloadFileInfo {
    fn to_vapi(&self) -> Value {
        structure(
            "com.vmware.content.library.item.downloadsession.file.info",
            [
                ("name", Value::String(self.name.clone())),
                ("size", optional(self.size.map(Value::from))),
                ("bytes_transferred", Value::from(self.bytes_transferred)),
                ("status", Value::from(self.status.as_str())),
                ("download_endpoint", opt(self.download_endpoint.as_ref())),
                ("checksum_info", opt(self.checksum_info.as_ref())),
                ("error_message", opt(self.error_message.as_ref())),
            ],
        )
    }
}

/// `com.vmware.content.library.item.transfer_endpoint`. `ssl_certificate`
/// is newer than some SDKs; older bindings keep it as an extra field.
impl ToVapi for TransferEndpoint {
    fn to_vapi(&self) -> Value {
        structure(
            "com.vmware.content.library.item.transfer_endpoint",
            [
                ("uri", Value::String(self.uri.clone())),
                (
                    "ssl_certificate_thumbprint",
                    optional(self.ssl_certificate_thumbprint.clone().map(Value::from)),
                ),
                (
                    "ssl_certificate",
                    optional(self.ssl_certificate.clone().map(Value::from)),
                ),
            ],
        )
    }
}

/// `com.vmware.content.library.item.file.checksum_info`.
impl ToVapi for ChecksumInfo {
    fn to_vapi(&self) -> Value {
        // The enum's wire spelling is its serde name (SHA1, MD5, SHA256, SHA512).
        let algorithm = self.algorithm.and_then(|a| serde_json::to_value(a).ok());
        structure(
            "com.vmware.content.library.item.file.checksum_info",
            [
                ("algorithm", optional(algorithm)),
                ("checksum", Value::String(self.checksum.clone())),
            ],
        )
    }
}

/// `com.vmware.content.library_model`: every field optional; the ones this
/// service does not keep are sent unset.
impl ToVapi for LibraryModel {
    fn to_vapi(&self) -> Value {
        structure(
            "com.vmware.content.library_model",
            [
                ("id", set(self.id.clone())),
                ("creation_time", set(time(&self.creation_time))),
                ("description", set(self.description.clone())),
                ("last_modified_time", set(time(&self.last_modified_time))),
                ("last_sync_time", unset()),
                ("name", set(self.name.clone())),
                ("storage_backings", unset()),
                ("type", set(self.library_type.clone())),
                ("optimization_info", unset()),
                ("version", unset()),
                ("publish_info", unset()),
                ("subscription_info", unset()),
                ("server_guid", unset()),
                ("security_policy_id", unset()),
                ("unset_security_policy_id", unset()),
            ],
        )
    }
}

/// `com.vmware.content.library.item_model`: every field optional.
impl ToVapi for ItemModel {
    fn to_vapi(&self) -> Value {
        structure(
            "com.vmware.content.library.item_model",
            [
                ("id", set(self.id.clone())),
                ("library_id", set(self.library_id.clone())),
                ("content_version", set(self.content_version.clone())),
                ("creation_time", set(time(&self.creation_time))),
                ("description", set(self.description.clone())),
                ("last_modified_time", set(time(&self.last_modified_time))),
                ("last_sync_time", unset()),
                ("metadata_version", unset()),
                ("name", set(self.name.clone())),
                ("cached", set(self.cached)),
                ("size", set(self.size)),
                ("type", set(self.item_type.clone())),
                ("version", unset()),
                ("source_id", unset()),
                ("security_compliance", unset()),
                ("certificate_verification_info", unset()),
            ],
        )
    }
}

/// `com.vmware.content.library.item.file.info`: only `checksum_info` is optional.
impl ToVapi for ItemFileInfo {
    fn to_vapi(&self) -> Value {
        structure(
            "com.vmware.content.library.item.file.info",
            [
                ("checksum_info", set(self.checksum_info.to_vapi())),
                ("name", Value::String(self.name.clone())),
                ("size", Value::from(self.size)),
                ("cached", Value::from(self.cached)),
                ("version", Value::String(self.version.clone())),
            ],
        )
    }
}

/// `com.vmware.cis.session.info`: all fields required.
impl ToVapi for SessionInfo {
    fn to_vapi(&self) -> Value {
        structure(
            "com.vmware.cis.session.info",
            [
                ("user", Value::String(self.user.clone())),
                ("created_time", time(&self.created_time)),
                ("last_accessed_time", time(&self.last_accessed_time)),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::domain::{models::ChecksumAlgorithm, PrepareStatus, SessionState};

    #[test]
    fn download_session_model_wraps_every_field() {
        let m = DownloadSessionModel {
            id: None,
            library_item_id: "item".into(),
            library_item_content_version: "3".into(),
            error_message: None,
            client_progress: 40,
            state: SessionState::Active,
            expiration_time: Utc.with_ymd_and_hms(2030, 1, 1, 0, 5, 0).unwrap(),
        };
        assert_eq!(
            m.to_vapi(),
            json!({"STRUCTURE": {"com.vmware.content.library.item.download_session_model": {
                "id": {"OPTIONAL": null},
                "library_item_id": {"OPTIONAL": "item"},
                "library_item_content_version": {"OPTIONAL": "3"},
                "error_message": {"OPTIONAL": null},
                "client_progress": {"OPTIONAL": 40},
                "state": {"OPTIONAL": "ACTIVE"},
                "expiration_time": {"OPTIONAL": "2030-01-01T00:05:00.000Z"}
            }}})
        );
    }

    #[test]
    fn file_info_nests_structures() {
        let f = DownloadFileInfo {
            name: "disk.vmdk".into(),
            size: Some(7),
            bytes_transferred: 7,
            status: PrepareStatus::Prepared,
            download_endpoint: Some(TransferEndpoint {
                uri: "http://h/x".into(),
                ssl_certificate_thumbprint: None,
                ssl_certificate: None,
            }),
            checksum_info: Some(ChecksumInfo {
                algorithm: Some(ChecksumAlgorithm::Sha256),
                checksum: "ab".into(),
            }),
            error_message: Some(LocalizableMessage::new("m.id", "text", &["a"])),
        };
        let v = f.to_vapi();
        let fields = &v["STRUCTURE"]["com.vmware.content.library.item.downloadsession.file.info"];
        assert_eq!(fields["size"], json!({"OPTIONAL": 7}));
        assert_eq!(fields["status"], json!("PREPARED"));
        assert_eq!(
            fields["download_endpoint"]["OPTIONAL"]["STRUCTURE"]
                ["com.vmware.content.library.item.transfer_endpoint"]["uri"],
            json!("http://h/x")
        );
        assert_eq!(
            fields["checksum_info"]["OPTIONAL"]["STRUCTURE"]
                ["com.vmware.content.library.item.file.checksum_info"]["algorithm"],
            json!({"OPTIONAL": "SHA256"})
        );
        assert_eq!(
            fields["error_message"]["OPTIONAL"]["STRUCTURE"]
                ["com.vmware.vapi.std.localizable_message"],
            json!({"id": "m.id", "default_message": "text", "args": ["a"],
                   "params": {"OPTIONAL": null}, "localized": {"OPTIONAL": null}})
        );
    }
}
