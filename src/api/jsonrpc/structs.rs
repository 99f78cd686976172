//! The contract's structures under their canonical vAPI names, with each
//! field marked optional or required exactly as VMware's IDL (the SDK bindings) has it.
//!
//! The field values are the structures' own serde output (the same JSON `/api` sends);
//! this module only adds the vAPI wrapping, from one table per structure.

use serde::Serialize;
use serde_json::{Map, Value};

use super::value::{optional, structure};
use crate::{
    domain::models::{
        ChecksumInfo, DownloadFileInfo, DownloadSessionModel, ItemFileInfo, ItemModel,
        LibraryModel, PublishInfo, SessionInfo, StorageBacking, StorageInfo, TransferEndpoint,
        UpdateFileInfo, UpdateSessionModel, ValidationError, ValidationResult,
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

/// How the IDL declares a field.
#[derive(Clone, Copy)]
enum Field {
    /// Sent as it is.
    Required,
    /// Wrapped: `{"OPTIONAL": value}`, `{"OPTIONAL": null}` when absent.
    Optional,
    /// A nested structure, optional.
    OptionalOf(&'static Structure),
    /// A nested structure, required.
    RequiredOf(&'static Structure),
    /// A list of structures, optional.
    OptionalListOf(&'static Structure),
    /// A list of structures, required.
    RequiredListOf(&'static Structure),
}

/// A vAPI structure: its canonical name and every field the IDL declares.
struct Structure {
    name: &'static str,
    fields: &'static [(&'static str, Field)],
}

impl Structure {
    /// The structure of `json` (a serde object). Fields the IDL has but this service
    /// does not keep are absent and go out unset.
    fn encode(&self, json: Value) -> Value {
        let Value::Object(mut json) = json else {
            unreachable!("vAPI structures serialize as JSON objects");
        };
        let fields: Vec<(&'static str, Value)> = self
            .fields
            .iter()
            .map(|&(name, field)| {
                let value = json.remove(name).filter(|v| !v.is_null());
                let encoded = match field {
                    Field::Required => value.unwrap_or(Value::Null),
                    Field::Optional => optional(value),
                    Field::OptionalOf(nested) => optional(value.map(|v| nested.encode(v))),
                    Field::RequiredOf(nested) => value.map_or(Value::Null, |v| nested.encode(v)),
                    Field::OptionalListOf(nested) => optional(value.map(|v| match v {
                        Value::Array(items) => {
                            Value::Array(items.into_iter().map(|i| nested.encode(i)).collect())
                        }
                        other => unreachable!("{} is a list: {other}", nested.name),
                    })),
                    Field::RequiredListOf(nested) => match value {
                        Some(Value::Array(items)) => {
                            Value::Array(items.into_iter().map(|i| nested.encode(i)).collect())
                        }
                        _ => Value::Array(Vec::new()),
                    },
                };
                (name, encoded)
            })
            .collect();
        debug_assert!(
            json.is_empty(),
            "{} has no IDL field for {json:?}",
            self.name
        );
        structure(self.name, fields)
    }
}

/// A serde type that is a vAPI structure.
trait Structured: Serialize {
    const STRUCTURE: Structure;
}

impl<T: Structured> ToVapi for T {
    fn to_vapi(&self) -> Value {
        let json = serde_json::to_value(self).unwrap_or(Value::Object(Map::new()));
        T::STRUCTURE.encode(json)
    }
}

macro_rules! structures {
    ($($ty:ty => $const:ident $name:literal { $($field:literal: $kind:expr),* $(,)? })*) => {
        $(
            const $const: Structure = Structure {
                name: $name,
                fields: &[$(($field, $kind)),*],
            };

            impl Structured for $ty {
                const STRUCTURE: Structure = $const;
            }
        )*
    };
}

use Field::{
    Optional as Opt, OptionalListOf, OptionalOf, Required as Req, RequiredListOf, RequiredOf,
};

structures! {
    LocalizableMessage => MESSAGE "com.vmware.vapi.std.localizable_message" {
        "id": Req, "default_message": Req, "args": Req,
        // Substitution parameters and a server-localized text: never produced here.
        "params": Opt, "localized": Opt,
    }
    DownloadSessionModel => SESSION "com.vmware.content.library.item.download_session_model" {
        "id": Opt, "library_item_id": Opt, "library_item_content_version": Opt,
        "error_message": OptionalOf(&MESSAGE), "client_progress": Opt, "state": Opt,
        "expiration_time": Opt,
    }
    DownloadFileInfo => FILE "com.vmware.content.library.item.downloadsession.file.info" {
        "name": Req, "size": Opt, "bytes_transferred": Req, "status": Req,
        "download_endpoint": OptionalOf(&ENDPOINT), "checksum_info": OptionalOf(&CHECKSUM),
        "error_message": OptionalOf(&MESSAGE),
    }
    // `ssl_certificate` is newer than some SDKs; older bindings keep it as an extra field.
    TransferEndpoint => ENDPOINT "com.vmware.content.library.item.transfer_endpoint" {
        "uri": Req, "ssl_certificate_thumbprint": Opt, "ssl_certificate": Opt,
    }
    ChecksumInfo => CHECKSUM "com.vmware.content.library.item.file.checksum_info" {
        "algorithm": Opt, "checksum": Req,
    }
    LibraryModel => LIBRARY "com.vmware.content.library_model" {
        "id": Opt, "creation_time": Opt, "description": Opt, "last_modified_time": Opt,
        "last_sync_time": Opt, "name": Opt, "storage_backings": OptionalListOf(&BACKING),
        "type": Opt, "optimization_info": Opt, "version": Opt,
        "publish_info": OptionalOf(&PUBLISH_INFO), "subscription_info": Opt, "server_guid": Opt,
        "security_policy_id": Opt, "unset_security_policy_id": Opt,
    }
    StorageBacking => BACKING "com.vmware.content.library.storage_backing" {
        "type": Opt, "datastore_id": Opt, "storage_uri": Opt,
    }
    PublishInfo => PUBLISH_INFO "com.vmware.content.library.publish_info" {
        "authentication_method": Opt, "published": Opt, "publish_url": Opt, "user_name": Opt,
        "password": Opt, "current_password": Opt, "persist_json_enabled": Opt,
    }
    StorageInfo => STORAGE_INFO "com.vmware.content.library.item.storage.info" {
        "storage_backing": RequiredOf(&BACKING), "storage_uris": Req,
        "checksum_info": OptionalOf(&CHECKSUM), "name": Req, "size": Req, "cached": Req,
        "version": Req,
    }
    ItemModel => ITEM "com.vmware.content.library.item_model" {
        "id": Opt, "library_id": Opt, "content_version": Opt, "creation_time": Opt,
        "description": Opt, "last_modified_time": Opt, "last_sync_time": Opt,
        "metadata_version": Opt, "name": Opt, "cached": Opt, "size": Opt, "type": Opt,
        "version": Opt, "source_id": Opt, "security_compliance": Opt,
        "certificate_verification_info": Opt,
    }
    ItemFileInfo => ITEM_FILE "com.vmware.content.library.item.file.info" {
        "checksum_info": OptionalOf(&CHECKSUM), "name": Req, "size": Req, "cached": Req,
        "version": Req,
    }
    SessionInfo => SESSION_INFO "com.vmware.cis.session.info" {
        "user": Req, "created_time": Req, "last_accessed_time": Req,
    }
    UpdateSessionModel => UPDATE_SESSION "com.vmware.content.library.item.update_session_model" {
        "id": Opt, "library_item_id": Opt, "library_item_content_version": Opt,
        "error_message": OptionalOf(&MESSAGE), "client_progress": Opt, "state": Opt,
        "expiration_time": Opt, "preview_info": Opt, "warning_behavior": Opt,
    }
    UpdateFileInfo => UPDATE_FILE "com.vmware.content.library.item.updatesession.file.info" {
        "name": Req, "source_type": Req, "size": Opt, "checksum_info": OptionalOf(&CHECKSUM),
        "source_endpoint": OptionalOf(&ENDPOINT), "upload_endpoint": OptionalOf(&ENDPOINT),
        "bytes_transferred": Req, "status": Req, "error_message": OptionalOf(&MESSAGE),
        "keep_in_storage": Opt,
    }
    ValidationError => VALIDATION_ERROR "com.vmware.content.library.item.updatesession.file.validation_error" {
        "name": Req, "error_message": RequiredOf(&MESSAGE),
    }
    ValidationResult => VALIDATION "com.vmware.content.library.item.updatesession.file.validation_result" {
        "has_errors": Req, "missing_files": Req, "invalid_files": RequiredListOf(&VALIDATION_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
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
    fn storage_info_nests_a_required_backing() {
        let backing = StorageBacking {
            backing_type: crate::domain::models::StorageBackingType::Other,
            datastore_id: None,
            storage_uri: Some("s3://b/".into()),
        };
        let info = StorageInfo {
            storage_backing: backing,
            storage_uris: vec!["s3://b/blobs/ab".into()],
            checksum_info: ChecksumInfo::sha256("ab"),
            name: "f".into(),
            size: 3,
            cached: true,
            version: "1".into(),
        };
        let v = info.to_vapi();
        let fields = &v["STRUCTURE"]["com.vmware.content.library.item.storage.info"];
        assert_eq!(
            fields["storage_backing"],
            json!({"STRUCTURE": {"com.vmware.content.library.storage_backing": {
                "type": {"OPTIONAL": "OTHER"}, "datastore_id": {"OPTIONAL": null},
                "storage_uri": {"OPTIONAL": "s3://b/"}}}})
        );
        assert_eq!(fields["storage_uris"], json!(["s3://b/blobs/ab"]));
        assert_eq!(fields["size"], json!(3));
        assert_eq!(
            fields["checksum_info"]["OPTIONAL"]["STRUCTURE"]
                ["com.vmware.content.library.item.file.checksum_info"]["checksum"],
            json!("ab")
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
