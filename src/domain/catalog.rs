//! The catalog's values and rules: library and item names, descriptions, item types,
//! the specs clients send to create, update and find them, and what those parse into.
//!
//! The specs are the wire types of all three surfaces (`/api` and `/rest` send them as
//! JSON; JSON-RPC's vAPI values are unwrapped into the same JSON), so every surface
//! accepts and refuses exactly the same things.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{models::LibraryType, ClientToken, LibraryId, Parsed};
use crate::error::{Error, Result};

/// Longest library or item name, in characters (VMware's limit for items; ours for libraries too).
pub const MAX_NAME: usize = 80;
/// Longest description, in characters (VMware's limit for items; ours for libraries too).
pub const MAX_DESCRIPTION: usize = 2000;
/// Longest item type, in characters.
pub const MAX_TYPE: usize = 80;

/// The type of an item created without one: generic files.
pub const GENERIC_TYPE: &str = "file";

fn invalid(field: &str, id: &str, message: String) -> Error {
    Error::invalid_argument(id, message, &[field])
}

/// A name: 1 to [`MAX_NAME`] characters, not only white space, no control characters.
fn name(raw: &str, what: &str, id: &str) -> Result<String> {
    let chars = raw.chars().count();
    if raw.trim().is_empty() {
        return Err(invalid(
            "name",
            id,
            format!("The {what} name must not be empty."),
        ));
    }
    if chars > MAX_NAME {
        return Err(invalid(
            "name",
            id,
            format!("The {what} name is longer than {MAX_NAME} characters."),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            id,
            format!("The {what} name must not contain control characters."),
        ));
    }
    Ok(raw.to_string())
}

/// The name of a library; unique among libraries regardless of case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryName(String);

impl LibraryName {
    pub fn parse(raw: &str) -> Result<Self> {
        name(raw, "library", "com.vmware.content.library.invalid_name").map(LibraryName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LibraryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of an item; unique within its library regardless of case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemName(String);

impl ItemName {
    pub fn parse(raw: &str) -> Result<Self> {
        name(
            raw,
            "library item",
            "com.vmware.content.library.item.invalid_name",
        )
        .map(ItemName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ItemName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A description: at most [`MAX_DESCRIPTION`] characters, no NUL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(raw: &str) -> Result<Self> {
        let id = "com.vmware.content.invalid_description";
        if raw.chars().count() > MAX_DESCRIPTION {
            return Err(invalid(
                "description",
                id,
                format!("The description is longer than {MAX_DESCRIPTION} characters."),
            ));
        }
        // PostgreSQL text cannot hold NUL.
        if raw.contains('\0') {
            return Err(invalid(
                "description",
                id,
                "The description must not contain NUL characters.".into(),
            ));
        }
        Ok(Description(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The type of an item (`ovf`, `iso`, `vm-template`, ... `file` for generic content):
/// a free identifier, as vCenter's type adapters name them; compared without case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemType(String);

impl ItemType {
    /// A type sent by a client: `""` means none (govmomi always sends the field).
    pub fn parse(raw: &str) -> Result<Option<Self>> {
        if raw.is_empty() {
            return Ok(None);
        }
        let id = "com.vmware.content.library.item.invalid_type";
        if raw.chars().count() > MAX_TYPE || raw.trim() != raw || raw.chars().any(char::is_control)
        {
            return Err(invalid(
                "type",
                id,
                format!(
                    "The item type {raw:?} is not a type: at most {MAX_TYPE} characters, \
                     no surrounding spaces or control characters."
                ),
            ));
        }
        Ok(Some(ItemType(raw.to_string())))
    }

    /// Generic content: what an item without a type is.
    pub fn generic() -> Self {
        ItemType(GENERIC_TYPE.to_string())
    }

    /// The type `import` gives files when none is named: `ovf` when an OVF
    /// descriptor is among them, `iso` when they are all ISO images, else
    /// generic. (An `.ova` is stored as it is, unpacked by nobody: generic.)
    pub fn guess<'a>(file_names: impl IntoIterator<Item = &'a str>) -> Self {
        let extensions: Vec<String> = file_names
            .into_iter()
            .map(|n| {
                std::path::Path::new(n)
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase()
            })
            .collect();
        let kind = if extensions.iter().any(|e| e == "ovf") {
            "ovf"
        } else if !extensions.is_empty() && extensions.iter().all(|e| e == "iso") {
            "iso"
        } else {
            GENERIC_TYPE
        };
        ItemType(kind.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ------------------------------------------------------------------- specs

/// `com.vmware.content.library.storage_backing` as a client sends it.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageBackingSpec {
    /// `DATASTORE` or `OTHER`.
    #[schema(value_type = crate::domain::models::StorageBackingType, required = true)]
    #[serde(rename = "type")]
    pub backing_type: Option<String>,
    /// Only with `DATASTORE`.
    #[schema(example = "datastore-12")]
    pub datastore_id: Option<String>,
    /// Only with `OTHER`.
    #[schema(example = "nfs://nas.example.com/library")]
    pub storage_uri: Option<String>,
}

/// `com.vmware.content.library.publish_info` as a client sends it. Publishing
/// is not supported: only `published: false` (or absent) is accepted.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishInfoSpec {
    #[schema(value_type = Option<crate::domain::models::AuthenticationMethod>)]
    pub authentication_method: Option<String>,
    pub published: Option<bool>,
    pub publish_url: Option<String>,
    pub user_name: Option<String>,
    #[schema(format = Password)]
    pub password: Option<String>,
    #[schema(format = Password)]
    pub current_password: Option<String>,
    pub persist_json_enabled: Option<bool>,
}

/// A `com.vmware.content.library_model` as a client sends it to create or update a
/// library. Every field of VMware's model is accepted; those the operation does not
/// use (`id`, times, `server_guid`, ...) are ignored.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "isos",
    "description": "Installer images",
    "type": "LOCAL",
    "storage_backings": [{"type": "OTHER"}]
}))]
pub struct LibraryModelSpec {
    pub id: Option<String>,
    #[schema(format = DateTime)]
    pub creation_time: Option<String>,
    /// Unset: `""` on create, unchanged on update.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub last_modified_time: Option<String>,
    #[schema(format = DateTime)]
    pub last_sync_time: Option<String>,
    /// Required on create; unique among libraries regardless of case; no control characters.
    #[schema(example = "isos", min_length = 1, max_length = 80)]
    pub name: Option<String>,
    /// At most one; every library lives in the service's content store whatever
    /// is asked (see README "Libraries and items").
    #[schema(max_items = 1)]
    pub storage_backings: Option<Vec<StorageBackingSpec>>,
    /// `LOCAL` (or unset) on create.
    #[serde(rename = "type")]
    #[schema(value_type = Option<LibraryType>)]
    pub library_type: Option<String>,
    pub optimization_info: Option<serde_json::Map<String, Value>>,
    /// Update: the version the change is based on (a concurrent change refuses it).
    pub version: Option<String>,
    pub publish_info: Option<PublishInfoSpec>,
    /// Refused for a local library.
    pub subscription_info: Option<serde_json::Map<String, Value>>,
    pub server_guid: Option<String>,
    /// Security policies are not supported: refused when set.
    pub security_policy_id: Option<String>,
    pub unset_security_policy_id: Option<bool>,
}

/// A `com.vmware.content.library.item_model` as a client sends it to create or
/// update an item; fields the operation does not use are ignored.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "library_id": "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98",
    "name": "photon",
    "description": "Photon OS installer",
    "type": "iso"
}))]
pub struct ItemModelSpec {
    pub id: Option<String>,
    /// The library (required on create; ignored on update).
    #[schema(example = "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98")]
    pub library_id: Option<String>,
    pub content_version: Option<String>,
    #[schema(format = DateTime)]
    pub creation_time: Option<String>,
    /// Unset: `""` on create, unchanged on update.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub last_modified_time: Option<String>,
    #[schema(format = DateTime)]
    pub last_sync_time: Option<String>,
    pub metadata_version: Option<String>,
    /// Required on create; unique within the library regardless of case; no control characters.
    #[schema(example = "photon", min_length = 1, max_length = 80)]
    pub name: Option<String>,
    pub cached: Option<bool>,
    pub size: Option<i64>,
    /// `ovf`, `iso`, ...; unset or `""`: generic (`file`) on create, unchanged on update.
    #[serde(rename = "type")]
    #[schema(example = "iso", max_length = 80)]
    pub item_type: Option<String>,
    /// Update: the version the change is based on (a stale one is refused).
    pub version: Option<String>,
    pub source_id: Option<String>,
    pub security_compliance: Option<bool>,
    pub certificate_verification_info: Option<serde_json::Map<String, Value>>,
}

/// `com.vmware.content.library.find_spec`: every field given must match.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "isos"}))]
pub struct LibraryFindSpec {
    /// The name, compared without case.
    pub name: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = Option<LibraryType>)]
    pub library_type: Option<String>,
}

/// `com.vmware.content.library.item.find_spec`: every field given must match.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"library_id": "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98", "name": "photon"}))]
pub struct ItemFindSpec {
    /// The name, compared without case.
    pub name: Option<String>,
    /// Only items of this library (all libraries when unset).
    pub library_id: Option<String>,
    /// Items of local libraries have no source: set, nothing matches.
    pub source_id: Option<String>,
    /// The type, compared without case.
    #[serde(rename = "type")]
    pub item_type: Option<String>,
    pub cached: Option<bool>,
}

// ----------------------------------------------------------------- parsed

/// A library to create, parsed from a create spec.
#[derive(Clone, Debug)]
pub struct NewLibrary {
    pub name: LibraryName,
    pub description: Description,
    pub client_token: Option<ClientToken>,
}

/// Which operation updates a library: they check different things and answer a
/// stale `version` differently (VMware: `Library.update` INVALID_ARGUMENT,
/// `LocalLibrary.update` CONCURRENT_CHANGE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibraryUpdateVia {
    /// `com.vmware.content.library.update`: name and description only.
    Library,
    /// `com.vmware.content.local_library.update`.
    LocalLibrary,
}

/// The changes of a library update; `None` leaves a property as it is.
#[derive(Clone, Debug, Default)]
pub struct LibraryUpdate {
    pub name: Option<LibraryName>,
    pub description: Option<Description>,
    /// The version the change is based on.
    pub version: Option<String>,
}

/// An item to create, parsed from a create spec.
#[derive(Clone, Debug)]
pub struct NewItem {
    pub library_id: LibraryId,
    pub name: ItemName,
    pub description: Description,
    pub item_type: ItemType,
    pub client_token: Option<ClientToken>,
}

/// The changes of an item update; `None` leaves a property as it is.
#[derive(Clone, Debug, Default)]
pub struct ItemUpdate {
    pub name: Option<ItemName>,
    pub description: Option<Description>,
    pub item_type: Option<ItemType>,
    pub version: Option<String>,
}

/// What a library find asks for.
#[derive(Clone, Debug, Default)]
pub struct LibraryFind {
    pub name: Option<String>,
    /// A type no library here has (`SUBSCRIBED`): nothing matches.
    pub matches_nothing: bool,
}

/// What an item find asks for.
#[derive(Clone, Debug, Default)]
pub struct ItemFind {
    pub name: Option<String>,
    pub library_id: Option<LibraryId>,
    pub item_type: Option<String>,
    /// A condition no item here meets (a source, `cached: false`, an id that is
    /// not one): nothing matches.
    pub matches_nothing: bool,
}

fn empty_find_spec(what: &str) -> Error {
    Error::invalid_argument(
        "com.vmware.content.find_spec.empty",
        format!("The {what} find spec must set at least one property."),
        &[what],
    )
}

fn library_type(raw: &str) -> Result<LibraryType> {
    match raw {
        "LOCAL" => Ok(LibraryType::Local),
        "SUBSCRIBED" => Ok(LibraryType::Subscribed),
        other => Err(Error::invalid_argument(
            "com.vmware.content.library.invalid_type",
            format!("Library type {other:?} is not one of LOCAL, SUBSCRIBED."),
            &[other],
        )),
    }
}

impl LibraryFindSpec {
    pub fn parse(&self) -> Parsed<LibraryFind> {
        if self.name.is_none() && self.library_type.is_none() {
            return Err(empty_find_spec("library"));
        }
        let local = self.library_type.as_deref().map(library_type).transpose()?;
        Ok(LibraryFind {
            name: self.name.clone(),
            matches_nothing: local == Some(LibraryType::Subscribed),
        })
    }
}

impl ItemFindSpec {
    pub fn parse(&self) -> Parsed<ItemFind> {
        let ItemFindSpec {
            name,
            library_id,
            source_id,
            item_type,
            cached,
        } = self;
        if name.is_none()
            && library_id.is_none()
            && source_id.is_none()
            && item_type.is_none()
            && cached.is_none()
        {
            return Err(empty_find_spec("library item"));
        }
        // An id that is not even well-formed names no library: no item is in it.
        let library = library_id.as_deref().map(LibraryId::parse);
        Ok(ItemFind {
            name: name.clone(),
            library_id: library.as_ref().and_then(|l| l.as_ref().ok().copied()),
            item_type: item_type.clone(),
            matches_nothing: source_id.is_some()
                || *cached == Some(false)
                || library.is_some_and(|l| l.is_err()),
        })
    }
}

/// Checks the storage backings of a create: at most one (VMware: UNSUPPORTED
/// beyond), each of a known type with only its own field. Where the bytes go is
/// not the client's choice here; see `storage_backings` in the README.
fn check_backings(backings: &[StorageBackingSpec]) -> Result<()> {
    let id = "com.vmware.content.library.invalid_storage_backing";
    if backings.len() > 1 {
        return Err(Error::unsupported(
            "com.vmware.content.library.multiple_storage_backings",
            "A library has one storage backing.",
            &[],
        ));
    }
    for b in backings {
        let bad = |message: &str| Error::invalid_argument(id, message.to_string(), &[]);
        match b.backing_type.as_deref() {
            Some("DATASTORE") if b.storage_uri.is_some() => {
                return Err(bad("A DATASTORE storage backing has no storage_uri."))
            }
            Some("OTHER") if b.datastore_id.is_some() => {
                return Err(bad("An OTHER storage backing has no datastore_id."))
            }
            Some("DATASTORE" | "OTHER") => {}
            Some(other) => {
                return Err(Error::invalid_argument(
                    id,
                    format!("Storage backing type {other:?} is not one of DATASTORE, OTHER."),
                    &[other],
                ))
            }
            None => return Err(bad("A storage backing needs a type.")),
        }
    }
    Ok(())
}

/// Publishing is not supported: a publish spec may only say "not published".
fn check_not_published(publish: Option<&PublishInfoSpec>) -> Result<()> {
    if publish.is_some_and(|p| p.published == Some(true)) {
        return Err(Error::unsupported(
            "com.vmware.content.library.publish_unsupported",
            "Publishing libraries is not supported by this service.",
            &[],
        ));
    }
    if let Some(method) = publish.and_then(|p| p.authentication_method.as_deref()) {
        if !matches!(method, "NONE" | "BASIC") {
            return Err(Error::invalid_argument(
                "com.vmware.content.library.invalid_authentication_method",
                format!("Authentication method {method:?} is not one of BASIC, NONE."),
                &[method],
            ));
        }
    }
    Ok(())
}

/// What a local library cannot have: a subscription, a security policy.
fn check_local_only(spec: &LibraryModelSpec) -> Result<()> {
    if spec.subscription_info.is_some() {
        return Err(Error::invalid_argument(
            "com.vmware.content.local_library.subscription_info",
            "A local library has no subscription_info.",
            &[],
        ));
    }
    if spec.security_policy_id.is_some() {
        return Err(Error::unsupported(
            "com.vmware.content.library.security_policy_unsupported",
            "Security policies are not supported by this service.",
            &[],
        ));
    }
    check_not_published(spec.publish_info.as_ref())
}

impl LibraryModelSpec {
    /// The library a `local_library.create` spec asks for.
    pub fn new_library(&self, client_token: Option<&str>) -> Parsed<NewLibrary> {
        let name = self.name.as_deref().ok_or_else(|| {
            Error::invalid_argument(
                "com.vmware.content.library.missing_name",
                "A library needs a name.",
                &["name"],
            )
        })?;
        let name = LibraryName::parse(name)?;
        let description = Description::parse(self.description.as_deref().unwrap_or(""))?;
        if let Some(t) = self.library_type.as_deref() {
            if library_type(t)? != LibraryType::Local {
                return Err(Error::invalid_argument(
                    "com.vmware.content.local_library.invalid_type",
                    "A local library is of type LOCAL.",
                    &[t],
                ));
            }
        }
        check_backings(self.storage_backings.as_deref().unwrap_or(&[]))?;
        check_local_only(self)?;
        Ok(NewLibrary {
            name,
            description,
            client_token: client_token.map(ClientToken::parse).transpose()?,
        })
    }

    /// The changes an update spec asks for. `Library.update` changes name and
    /// description only; `LocalLibrary.update` also refuses what a local
    /// library cannot have.
    pub fn update(&self, via: LibraryUpdateVia) -> Parsed<LibraryUpdate> {
        if via == LibraryUpdateVia::LocalLibrary {
            check_local_only(self)?;
        }
        Ok(LibraryUpdate {
            name: self.name.as_deref().map(LibraryName::parse).transpose()?,
            description: self
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()?,
            version: self.version.clone(),
        })
    }
}

impl ItemModelSpec {
    /// The item an `item.create` spec asks for.
    pub fn new_item(&self, client_token: Option<&str>) -> Parsed<NewItem> {
        let library = self.library_id.as_deref().ok_or_else(|| {
            Error::invalid_argument(
                "com.vmware.content.library.item.missing_library_id",
                "A library item needs a library_id.",
                &["library_id"],
            )
        })?;
        let name = self.name.as_deref().ok_or_else(|| {
            Error::invalid_argument(
                "com.vmware.content.library.item.missing_name",
                "A library item needs a name.",
                &["name"],
            )
        })?;
        let name = ItemName::parse(name)?;
        let description = Description::parse(self.description.as_deref().unwrap_or(""))?;
        let item_type = self
            .item_type
            .as_deref()
            .map(ItemType::parse)
            .transpose()?
            .flatten()
            .unwrap_or_else(ItemType::generic);
        let client_token = client_token.map(ClientToken::parse).transpose()?;
        Ok(NewItem {
            // Last: a library that cannot exist is NOT_FOUND, after the spec's own checks.
            library_id: LibraryId::parse(library)?,
            name,
            description,
            item_type,
            client_token,
        })
    }

    /// The changes an `item.update` spec asks for.
    pub fn update(&self) -> Parsed<ItemUpdate> {
        Ok(ItemUpdate {
            name: self.name.as_deref().map(ItemName::parse).transpose()?,
            description: self
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()?,
            item_type: self
                .item_type
                .as_deref()
                .map(ItemType::parse)
                .transpose()?
                .flatten(),
            version: self.version.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorKind;

    fn library_spec(v: Value) -> LibraryModelSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn names() {
        assert!(LibraryName::parse("isos").is_ok());
        assert!(ItemName::parse(&"n".repeat(MAX_NAME)).is_ok());
        for bad in [
            String::new(),
            "   ".into(),
            "n".repeat(MAX_NAME + 1),
            "a\nb".into(),
            "a\0b".into(),
        ] {
            let e = ItemName::parse(&bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad:?}");
        }
        // Characters, not bytes.
        assert!(LibraryName::parse(&"é".repeat(MAX_NAME)).is_ok());
        assert!(Description::parse(&"d".repeat(MAX_DESCRIPTION)).is_ok());
        assert!(Description::parse(&"d".repeat(MAX_DESCRIPTION + 1)).is_err());
        assert!(Description::parse("").is_ok());
    }

    #[test]
    fn item_types() {
        assert_eq!(ItemType::parse("").unwrap(), None);
        assert_eq!(ItemType::parse("ovf").unwrap().unwrap().as_str(), "ovf");
        assert!(ItemType::parse(" ovf").is_err());
        assert!(ItemType::parse(&"t".repeat(MAX_TYPE + 1)).is_err());
        let guess = |names: &[&str]| ItemType::guess(names.iter().copied()).0;
        assert_eq!(guess(&["vm.ovf", "disk-0.vmdk", "vm.mf"]), "ovf");
        assert_eq!(guess(&["VM.OVF", "disk-0.vmdk"]), "ovf");
        assert_eq!(guess(&["photon.iso"]), "iso");
        assert_eq!(guess(&["a.ISO", "b.iso"]), "iso");
        assert_eq!(guess(&["a.iso", "notes.txt"]), "file");
        assert_eq!(guess(&["appliance.ova"]), "file");
        assert_eq!(guess(&["disk-0.vmdk"]), "file");
    }

    #[test]
    fn library_create_specs() {
        let ok = library_spec(json!({
            "name": "isos", "type": "LOCAL",
            "storage_backings": [{"type": "DATASTORE", "datastore_id": "datastore-12"}],
            "publish_info": {"published": false, "authentication_method": "NONE"},
        }));
        let lib = ok.new_library(Some("tok")).unwrap();
        assert_eq!(lib.name.as_str(), "isos");
        assert_eq!(lib.description.as_str(), "");
        assert!(lib.client_token.is_some());
        for (spec, kind) in [
            (json!({}), ErrorKind::InvalidArgument),
            (json!({"name": ""}), ErrorKind::InvalidArgument),
            (
                json!({"name": "x", "type": "SUBSCRIBED"}),
                ErrorKind::InvalidArgument,
            ),
            (
                json!({"name": "x", "type": "nope"}),
                ErrorKind::InvalidArgument,
            ),
            (
                json!({"name": "x", "storage_backings": [{"type": "OTHER"}, {"type": "OTHER"}]}),
                ErrorKind::Unsupported,
            ),
            (
                json!({"name": "x", "storage_backings": [{"type": "OTHER", "datastore_id": "d"}]}),
                ErrorKind::InvalidArgument,
            ),
            (
                json!({"name": "x", "storage_backings": [{"datastore_id": "d"}]}),
                ErrorKind::InvalidArgument,
            ),
            (
                json!({"name": "x", "publish_info": {"published": true}}),
                ErrorKind::Unsupported,
            ),
            (
                json!({"name": "x", "subscription_info": {"on_demand": true}}),
                ErrorKind::InvalidArgument,
            ),
            (
                json!({"name": "x", "security_policy_id": "p"}),
                ErrorKind::Unsupported,
            ),
        ] {
            let e = library_spec(spec.clone()).new_library(None).unwrap_err();
            assert_eq!(e.kind, kind, "{spec}");
        }
        let e = library_spec(json!({"name": "x"}))
            .new_library(Some(""))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn library_updates() {
        let spec = library_spec(json!({"description": "d", "version": "3",
            "publish_info": {"published": true}}));
        // Library.update looks at name and description only.
        let u = spec.update(LibraryUpdateVia::Library).unwrap();
        assert!(u.name.is_none());
        assert_eq!(u.description.unwrap().as_str(), "d");
        assert_eq!(u.version.as_deref(), Some("3"));
        assert_eq!(
            spec.update(LibraryUpdateVia::LocalLibrary)
                .unwrap_err()
                .kind,
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn item_specs() {
        let spec: ItemModelSpec = serde_json::from_value(json!({
            "library_id": "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98",
            "name": "n", "description": "", "type": ""
        }))
        .unwrap();
        let item = spec.new_item(None).unwrap();
        assert_eq!(item.item_type.as_str(), GENERIC_TYPE);
        let missing: ItemModelSpec = serde_json::from_value(json!({"name": "n"})).unwrap();
        assert_eq!(
            missing.new_item(None).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        let nowhere: ItemModelSpec =
            serde_json::from_value(json!({"name": "n", "library_id": "nope"})).unwrap();
        assert_eq!(
            nowhere.new_item(None).unwrap_err().kind,
            ErrorKind::NotFound
        );
        let update: ItemModelSpec = serde_json::from_value(json!({"type": ""})).unwrap();
        assert!(update.update().unwrap().item_type.is_none());
    }

    #[test]
    fn find_specs() {
        let e = LibraryFindSpec::default().parse().unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        let f = LibraryFindSpec {
            name: None,
            library_type: Some("SUBSCRIBED".into()),
        }
        .parse()
        .unwrap();
        assert!(f.matches_nothing);
        assert!(ItemFindSpec::default().parse().is_err());
        let f = ItemFindSpec {
            library_id: Some("nope".into()),
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert!(f.matches_nothing && f.library_id.is_none());
        let f = ItemFindSpec {
            cached: Some(true),
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert!(!f.matches_nothing);
    }
}
