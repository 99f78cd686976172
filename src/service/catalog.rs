//! The catalog operations: libraries (`library`, `local_library`, `subscribed_library`),
//! items, their files and item storage, each behind the privilege vCenter names for it.

use super::Service;
use crate::{
    domain::{
        catalog::{
            ItemFind, ItemUpdate, LibraryFind, LibraryUpdate, LibraryUpdateVia, NewItem, NewLibrary,
        },
        models::{
            ChecksumInfo, ItemFileInfo, ItemModel, LibraryModel, LibraryType, PublishInfo,
            StorageInfo,
        },
        Caller, FileName, ItemId, LibraryId, Parsed, Privilege,
    },
    error::{Error, ErrorKind, Result},
    store::catalog::{
        ItemCreated, ItemFileRow, ItemRow, LibraryCreated, LibraryRow, Revocation, Updated,
    },
};

/// What the download sessions of a deleted item say (`%s`: the item's id).
const REVOKED: Revocation<'static> = Revocation {
    session_id: "com.vmware.content.library.item.download_session.item_deleted",
    session_text: "Library item %s was deleted.",
    file_id: "com.vmware.content.library.item.downloadsession.file.item_deleted",
    file_text: "Library item %s was deleted; its files can no longer be downloaded.",
};

fn ids<T: ToString>(ids: Vec<T>) -> Vec<String> {
    ids.into_iter().map(|id| id.to_string()).collect()
}

fn duplicate_library(name: &str) -> Error {
    Error::already_exists(
        "com.vmware.content.library.duplicate_name",
        format!("A library named {name:?} already exists (names are compared without case)."),
        &[name],
    )
}

/// vCenter's own answer to a second item of the same name in a library.
fn duplicate_item(name: &str, library_name: &str, library: &str) -> Error {
    Error::already_exists(
        "com.vmware.vdcs.cls-main.duplicate_item_name_unsupported_in_library",
        format!(
            "Operation is not supported since a library item with the name {name} exists in \
             the library '{library_name}' (ID: {library})."
        ),
        &[name, library_name, library],
    )
}

impl Service {
    // ------------------------------------------------------------ libraries

    pub async fn list_libraries(&self, caller: &Caller) -> Result<Vec<String>> {
        caller.require(Privilege::Read)?;
        Ok(ids(self.db().list_library_ids().await?))
    }

    pub async fn get_library(&self, caller: &Caller, id: LibraryId) -> Result<LibraryModel> {
        caller.require(Privilege::Read)?;
        let row = self.db().get_library(id).await?;
        row.map(|r| self.library_model(r))
            .ok_or_else(|| LibraryId::not_found(&id.to_string()))
    }

    /// `library.find`: the ids of the libraries matching every property set.
    pub async fn find_libraries(
        &self,
        caller: &Caller,
        spec: Parsed<LibraryFind>,
    ) -> Result<Vec<String>> {
        caller.require(Privilege::Read)?;
        let find = spec?;
        if find.matches_nothing {
            return Ok(Vec::new());
        }
        Ok(ids(self.db().find_libraries(&find).await?))
    }

    /// `local_library.create`; the same client token from the same user answers
    /// the same id.
    pub async fn create_library(
        &self,
        caller: &Caller,
        spec: Parsed<NewLibrary>,
    ) -> Result<LibraryId> {
        caller.require(Privilege::CreateLocalLibrary)?;
        let new = spec?;
        match self.db().create_library(caller.user_id, &new).await? {
            LibraryCreated::Library(id) => Ok(id),
            LibraryCreated::DuplicateName => Err(duplicate_library(new.name.as_str())),
        }
    }

    /// `library.update` or `local_library.update`: name and description, under
    /// the version check of the operation.
    pub async fn update_library(
        &self,
        caller: &Caller,
        id: LibraryId,
        spec: Parsed<LibraryUpdate>,
        via: LibraryUpdateVia,
    ) -> Result<()> {
        caller.require(match via {
            LibraryUpdateVia::Library => Privilege::UpdateLibrary,
            LibraryUpdateVia::LocalLibrary => Privilege::UpdateLocalLibrary,
        })?;
        let update = spec?;
        match self.db().update_library(id, &update).await? {
            Updated::Done => Ok(()),
            Updated::NotFound => Err(LibraryId::not_found(&id.to_string())),
            Updated::StaleVersion { current } => {
                let (sent, current) = (update.version.unwrap_or_default(), current.to_string());
                let (kind, message_id) = match via {
                    LibraryUpdateVia::Library => (
                        ErrorKind::InvalidArgument,
                        "com.vmware.content.library.version_mismatch",
                    ),
                    LibraryUpdateVia::LocalLibrary => (
                        ErrorKind::ConcurrentChange,
                        "com.vmware.content.library.concurrent_change",
                    ),
                };
                Err(Error::new(
                    kind,
                    message_id,
                    format!(
                        "Library {id} is at version {current}, not {sent}: it changed meanwhile."
                    ),
                    &[&sent, &current],
                ))
            }
            Updated::DuplicateName { .. } => Err(duplicate_library(
                update.name.as_ref().map_or("", |n| n.as_str()),
            )),
        }
    }

    /// `local_library.delete`: the library, its items and their files; the items'
    /// download sessions go to ERROR and their URIs stop at once.
    pub async fn delete_library(&self, caller: &Caller, id: LibraryId) -> Result<()> {
        caller.require(Privilege::DeleteLocalLibrary)?;
        if self.db().delete_library(id, &REVOKED).await? {
            // Other instances learn it from the database's notification; this
            // one must not serve a cached URI of the library until it arrives.
            self.inner.validity.forget_all_sessions();
            Ok(())
        } else {
            Err(LibraryId::not_found(&id.to_string()))
        }
    }

    /// `subscribed_library.list`: libraries here are all local.
    pub async fn list_subscribed_libraries(&self, caller: &Caller) -> Result<Vec<String>> {
        caller.require(Privilege::Read)?;
        Ok(Vec::new())
    }

    /// `subscribed_library.get`: NOT_FOUND, or INVALID_ELEMENT_TYPE for a local library.
    pub async fn get_subscribed_library(
        &self,
        caller: &Caller,
        id: LibraryId,
    ) -> Result<LibraryModel> {
        caller.require(Privilege::Read)?;
        let raw = id.to_string();
        match self.db().get_library(id).await? {
            None => Err(LibraryId::not_found(&raw)),
            Some(_) => Err(Error::new(
                ErrorKind::InvalidElementType,
                "com.vmware.content.library.not_subscribed",
                format!("Library {raw} is a local library, not a subscribed one."),
                &[&raw],
            )),
        }
    }

    fn library_model(&self, r: LibraryRow) -> LibraryModel {
        LibraryModel {
            id: r.id.to_string(),
            name: r.name,
            description: r.description,
            library_type: LibraryType::Local,
            creation_time: r.creation_time,
            last_modified_time: r.last_modified_time,
            version: r.version.to_string(),
            server_guid: r.server_guid.to_string(),
            storage_backings: vec![self.inner.content.backing()],
            publish_info: PublishInfo::unpublished(),
        }
    }

    // ---------------------------------------------------------------- items

    pub async fn list_items(&self, caller: &Caller, library: LibraryId) -> Result<Vec<String>> {
        caller.require(Privilege::Read)?;
        let items = self.db().list_item_ids(library).await?;
        Ok(ids(items.ok_or_else(|| {
            LibraryId::not_found(&library.to_string())
        })?))
    }

    pub async fn get_item(&self, caller: &Caller, id: ItemId) -> Result<ItemModel> {
        caller.require(Privilege::Read)?;
        let row = self.db().get_item(id).await?;
        row.map(item_model)
            .ok_or_else(|| ItemId::not_found(&id.to_string()))
    }

    /// `item.find`: the ids of the items matching every property set.
    pub async fn find_items(&self, caller: &Caller, spec: Parsed<ItemFind>) -> Result<Vec<String>> {
        caller.require(Privilege::Read)?;
        let find = spec?;
        if find.matches_nothing {
            return Ok(Vec::new());
        }
        Ok(ids(self.db().find_items(&find).await?))
    }

    /// `item.create`: an item without files (content comes by `import`, later
    /// by update sessions); the same client token from the same user answers the same id.
    pub async fn create_item(&self, caller: &Caller, spec: Parsed<NewItem>) -> Result<ItemId> {
        caller.require(Privilege::AddLibraryItem)?;
        let new = spec?;
        match self.db().create_item(caller.user_id, &new).await? {
            ItemCreated::Item(id) => Ok(id),
            ItemCreated::NoSuchLibrary => Err(LibraryId::not_found(&new.library_id.to_string())),
            ItemCreated::DuplicateName { library_name } => Err(duplicate_item(
                new.name.as_str(),
                &library_name,
                &new.library_id.to_string(),
            )),
        }
    }

    /// `item.update`: name, description and type; a stale `version` is INVALID_ARGUMENT.
    pub async fn update_item(
        &self,
        caller: &Caller,
        id: ItemId,
        spec: Parsed<ItemUpdate>,
    ) -> Result<()> {
        caller.require(Privilege::UpdateLibraryItem)?;
        let update = spec?;
        match self.db().update_item(id, &update).await? {
            Updated::Done => Ok(()),
            Updated::NotFound => Err(ItemId::not_found(&id.to_string())),
            Updated::StaleVersion { current } => {
                let (sent, current) = (update.version.unwrap_or_default(), current.to_string());
                Err(Error::invalid_argument(
                    "com.vmware.content.library.item.version_mismatch",
                    format!(
                        "Library item {id} is at version {current}, not {sent}: it changed meanwhile."
                    ),
                    &[&sent, &current],
                ))
            }
            Updated::DuplicateName { library } => {
                let (library, library_name) =
                    library.unwrap_or((LibraryId(uuid::Uuid::nil()), String::new()));
                let name = update.name.as_ref().map_or("", |n| n.as_str());
                Err(duplicate_item(name, &library_name, &library.to_string()))
            }
        }
    }

    /// `item.delete`: the item and its files; its download sessions go to ERROR
    /// and their URIs stop at once, on every instance.
    pub async fn delete_item(&self, caller: &Caller, id: ItemId) -> Result<()> {
        caller.require(Privilege::DeleteLibraryItem)?;
        if self.db().delete_item(id, &REVOKED).await? {
            self.inner.validity.forget_item_sessions(id);
            Ok(())
        } else {
            Err(ItemId::not_found(&id.to_string()))
        }
    }

    // ----------------------------------------------------------- item files

    /// The files of the item's current content version, after `privilege`.
    async fn item_file_rows(
        &self,
        caller: &Caller,
        item: ItemId,
        privilege: Privilege,
    ) -> Result<Vec<ItemFileRow>> {
        caller.require(privilege)?;
        if !self.db().item_exists(item).await? {
            return Err(ItemId::not_found(&item.to_string()));
        }
        Ok(self.db().list_item_files(item).await?)
    }

    pub async fn list_item_files(
        &self,
        caller: &Caller,
        item: ItemId,
    ) -> Result<Vec<ItemFileInfo>> {
        let rows = self.item_file_rows(caller, item, Privilege::Read).await?;
        Ok(rows
            .into_iter()
            .map(|f| ItemFileInfo {
                checksum_info: ChecksumInfo::sha256(&f.sha256),
                name: f.name,
                size: f.size,
                cached: true,
                version: f.content_version.to_string(),
            })
            .collect())
    }

    /// One file of the item; `name` comes from [`FileName::parse_or_missing`].
    pub async fn get_item_file(
        &self,
        caller: &Caller,
        item: ItemId,
        name: Parsed<FileName>,
    ) -> Result<ItemFileInfo> {
        let files = self.list_item_files(caller, item).await?;
        let name = name?;
        files
            .into_iter()
            .find(|f| f.name == name.as_str())
            .ok_or_else(|| FileName::missing(name.as_str()))
    }

    // --------------------------------------------------------- item storage

    /// `item.storage.list`: where each file of the item lies (`ContentLibrary.ReadStorage`).
    pub async fn list_item_storage(
        &self,
        caller: &Caller,
        item: ItemId,
    ) -> Result<Vec<StorageInfo>> {
        let rows = self
            .item_file_rows(caller, item, Privilege::ReadStorage)
            .await?;
        Ok(rows.into_iter().map(|f| self.storage_info(f)).collect())
    }

    /// `item.storage.get`: one file, as a list (one entry per storage backing, as
    /// VMware defines it); `name` comes from [`FileName::parse_or_not_stored`].
    pub async fn get_item_storage(
        &self,
        caller: &Caller,
        item: ItemId,
        name: Parsed<FileName>,
    ) -> Result<Vec<StorageInfo>> {
        let rows = self
            .item_file_rows(caller, item, Privilege::ReadStorage)
            .await?;
        let name = name?;
        let file = rows
            .into_iter()
            .find(|f| f.name == name.as_str())
            .ok_or_else(|| FileName::not_stored(name.as_str()))?;
        Ok(vec![self.storage_info(file)])
    }

    fn storage_info(&self, f: ItemFileRow) -> StorageInfo {
        let content = &self.inner.content;
        StorageInfo {
            storage_backing: content.backing(),
            storage_uris: content.uri_of(&f.content_key).into_iter().collect(),
            checksum_info: ChecksumInfo::sha256(&f.sha256),
            name: f.name,
            size: f.size,
            cached: true,
            version: f.content_version.to_string(),
        }
    }
}

fn item_model(r: ItemRow) -> ItemModel {
    ItemModel {
        id: r.id.to_string(),
        library_id: r.library_id.to_string(),
        name: r.name,
        item_type: r.r#type,
        description: r.description,
        size: r.size,
        content_version: r.content_version.to_string(),
        metadata_version: r.metadata_version.to_string(),
        version: r.version.to_string(),
        cached: true,
        creation_time: r.creation_time,
        last_modified_time: r.last_modified_time,
    }
}
