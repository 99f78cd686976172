//! Libraries, items and item files: reads, finds, creates (idempotent per client
//! token), updates under a version check, deletes that revoke the download sessions
//! of what they delete, and the content-store objects the files reference.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{secs, Db, Result};
use crate::domain::{
    catalog::{ItemFind, ItemType, ItemUpdate, LibraryFind, LibraryUpdate, NewItem, NewLibrary},
    FileName, ItemId, LibraryId,
};

#[derive(Clone, Debug)]
pub struct LibraryRow {
    pub id: LibraryId,
    pub name: String,
    pub description: String,
    pub creation_time: DateTime<Utc>,
    pub last_modified_time: DateTime<Utc>,
    pub version: i64,
    /// The cluster's id, the same in every row.
    pub server_guid: Uuid,
}

#[derive(Clone, Debug)]
pub struct ItemRow {
    pub id: ItemId,
    pub library_id: LibraryId,
    pub name: String,
    pub r#type: String,
    pub description: String,
    pub content_version: i64,
    pub version: i64,
    pub metadata_version: i64,
    /// Total size of the current content version's files.
    pub size: i64,
    pub creation_time: DateTime<Utc>,
    pub last_modified_time: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct ItemFileRow {
    pub name: String,
    pub size: i64,
    pub sha256: String,
    pub content_key: String,
    pub content_version: i64,
}

/// A file written to the content store, ready to be recorded in the catalog.
#[derive(Clone, Debug)]
pub struct NewItemFile {
    pub name: FileName,
    pub size: i64,
    pub sha256: String,
    pub content_key: String,
}

/// What a library create found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibraryCreated {
    /// A new library, or the one this user's client token already made.
    Library(LibraryId),
    /// Another library has the name (in any case).
    DuplicateName,
}

/// What an item create found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemCreated {
    /// A new item, or the one this user's client token already made.
    Item(ItemId),
    NoSuchLibrary,
    /// Another item of the library has the name (in any case); the library's name.
    DuplicateName {
        library_name: String,
    },
}

/// What an update of a library or an item found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Updated {
    /// Changed (its version grew), or there was nothing to change.
    Done,
    NotFound,
    /// The spec's version is not the current one.
    StaleVersion {
        current: i64,
    },
    /// Another library (or item of the same library) has the new name; for an
    /// item, its library's id and name.
    DuplicateName {
        library: Option<(LibraryId, String)>,
    },
}

/// What an import recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imported {
    /// The item and the content version its files now are.
    Version(ItemId, i64),
    /// A collector took one of the content objects between their reservation
    /// and this record (the import outlived the collection grace): store again.
    ContentCollected,
}

/// How a deletion tells the download sessions of the items it deletes: the
/// session's and its files' `error_message` (ids, and `%s` for the item id).
pub struct Revocation<'a> {
    pub session_id: &'a str,
    pub session_text: &'a str,
    pub file_id: &'a str,
    pub file_text: &'a str,
}

/// Whether `e` is a violation of the unique index `index`.
fn violates(e: &sqlx::Error, index: &str) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.code().as_deref() == Some("23505") && d.constraint() == Some(index))
}

/// The answer to an update based on `sent`, a version that is not `current`.
fn stale(sent: Option<&str>, current: i64) -> Option<Updated> {
    sent.is_some_and(|v| v != current.to_string())
        .then_some(Updated::StaleVersion { current })
}

/// Whether setting a property to `new` (None: leave it) changes it.
fn changes(new: Option<&str>, current: &str) -> bool {
    new.is_some_and(|n| n != current)
}

const LIBRARY_NAME_INDEX: &str = "libraries_name_ci";
const ITEM_NAME_INDEX: &str = "library_items_name_ci";

impl Db {
    // ------------------------------------------------------------ libraries

    /// Ids of every library (listing needs nothing else).
    pub async fn list_library_ids(&self) -> Result<Vec<LibraryId>> {
        Ok(sqlx::query_scalar!(
            r#"SELECT id AS "id: LibraryId" FROM libraries ORDER BY creation_time, id"#
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn get_library(&self, id: LibraryId) -> Result<Option<LibraryRow>> {
        Ok(sqlx::query_as!(
            LibraryRow,
            r#"SELECT id AS "id: LibraryId", name, description, creation_time, last_modified_time,
                   version, (SELECT server_guid FROM server_identity) AS "server_guid!"
               FROM libraries WHERE id = $1"#,
            id.0
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Ids of the libraries `find` matches (names compared without case).
    pub async fn find_libraries(&self, find: &LibraryFind) -> Result<Vec<LibraryId>> {
        Ok(sqlx::query_scalar!(
            r#"SELECT id AS "id: LibraryId" FROM libraries
               WHERE $1::text IS NULL OR lower(name) = lower($1)
               ORDER BY creation_time, id"#,
            find.name
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Creates a library; the same client token from the same user answers the
    /// library it made before.
    pub async fn create_library(&self, owner: Uuid, new: &NewLibrary) -> Result<LibraryCreated> {
        let token = new.client_token.as_ref().map(|t| t.as_str());
        let mut tx = self.pool.begin().await?;
        if let Some(earlier) = library_by_token(&mut tx, owner, token).await? {
            return Ok(LibraryCreated::Library(earlier));
        }
        let id = sqlx::query_scalar!(
            r#"INSERT INTO libraries (id, name, description, created_by, client_token)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
               RETURNING id AS "id: LibraryId""#,
            LibraryId::new_random().0,
            new.name.as_str(),
            new.description.as_str(),
            owner,
            token
        )
        .fetch_optional(&mut *tx)
        .await?;
        let created = match id {
            Some(id) => LibraryCreated::Library(id),
            // A concurrent create with the same token won, or the name is taken.
            None => match library_by_token(&mut tx, owner, token).await? {
                Some(earlier) => LibraryCreated::Library(earlier),
                None => LibraryCreated::DuplicateName,
            },
        };
        tx.commit().await?;
        Ok(created)
    }

    /// Changes name and description; the version grows when something changed.
    pub async fn update_library(&self, id: LibraryId, update: &LibraryUpdate) -> Result<Updated> {
        let mut tx = self.pool.begin().await?;
        let current = sqlx::query!(
            "SELECT name, description, version FROM libraries WHERE id = $1 FOR UPDATE",
            id.0
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(Updated::NotFound);
        };
        if let Some(stale) = stale(update.version.as_deref(), current.version) {
            return Ok(stale);
        }
        let name = update.name.as_ref().map(|n| n.as_str());
        let description = update.description.as_ref().map(|d| d.as_str());
        let changed = changes(name, &current.name) || changes(description, &current.description);
        if !changed {
            return Ok(Updated::Done);
        }
        let done = sqlx::query!(
            "UPDATE libraries SET name = COALESCE($2, name), \
                 description = COALESCE($3, description), version = version + 1, \
                 last_modified_time = now() \
             WHERE id = $1",
            id.0,
            name,
            description
        )
        .execute(&mut *tx)
        .await;
        match done {
            Err(e) if violates(&e, LIBRARY_NAME_INDEX) => {
                return Ok(Updated::DuplicateName { library: None })
            }
            done => done?,
        };
        tx.commit().await?;
        Ok(Updated::Done)
    }

    /// Deletes a library with its items and their files; the download sessions
    /// of those items go to ERROR in the same transaction. False when there was
    /// no such library.
    pub async fn delete_library(&self, id: LibraryId, why: &Revocation<'_>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // The library first: item creates (which share-lock it) wait from here on.
        let found = sqlx::query_scalar!("SELECT id FROM libraries WHERE id = $1 FOR UPDATE", id.0)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(false);
        }
        // Then its items: session creates (which share-lock an item) finish first.
        let items = sqlx::query_scalar!(
            "SELECT id FROM library_items WHERE library_id = $1 FOR UPDATE",
            id.0
        )
        .fetch_all(&mut *tx)
        .await?;
        revoke_sessions(&mut tx, &items, why).await?;
        sqlx::query!("DELETE FROM libraries WHERE id = $1", id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    // ---------------------------------------------------------------- items

    /// Ids of a library's items (no sizes: listing needs none); None when
    /// there is no such library. One statement for both answers.
    pub async fn list_item_ids(&self, library: LibraryId) -> Result<Option<Vec<ItemId>>> {
        let rows = sqlx::query_scalar!(
            r#"SELECT i.id AS "id?: ItemId" FROM libraries l
               LEFT JOIN library_items i ON i.library_id = l.id
               WHERE l.id = $1 ORDER BY i.creation_time, i.id"#,
            library.0
        )
        .fetch_all(&self.pool)
        .await?;
        // The library's own row comes back even when it has no items (id NULL).
        Ok((!rows.is_empty()).then(|| rows.into_iter().flatten().collect()))
    }

    pub async fn item_exists(&self, id: ItemId) -> Result<bool> {
        Ok(sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM library_items WHERE id = $1) AS "exists!""#,
            id.0
        )
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn get_item(&self, id: ItemId) -> Result<Option<ItemRow>> {
        Ok(sqlx::query_as!(
            ItemRow,
            r#"SELECT i.id AS "id: ItemId", i.library_id AS "library_id: LibraryId", i.name,
                   i.type, i.description, i.content_version, i.version, i.metadata_version,
                   i.creation_time, i.last_modified_time,
                   COALESCE((SELECT sum(f.size) FROM item_files f
                             WHERE f.item_id = i.id AND f.content_version = i.content_version),
                            0)::bigint AS "size!"
               FROM library_items i WHERE i.id = $1"#,
            id.0
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Ids of the items `find` matches (name and type compared without case).
    pub async fn find_items(&self, find: &ItemFind) -> Result<Vec<ItemId>> {
        Ok(sqlx::query_scalar!(
            r#"SELECT id AS "id: ItemId" FROM library_items
               WHERE ($1::text IS NULL OR lower(name) = lower($1))
                 AND ($2::uuid IS NULL OR library_id = $2)
                 AND ($3::text IS NULL OR lower(type) = lower($3))
               ORDER BY creation_time, id"#,
            find.name,
            find.library_id.map(|l| l.0),
            find.item_type
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Creates an item without files; the same client token from the same user
    /// answers the item it made before.
    pub async fn create_item(&self, owner: Uuid, new: &NewItem) -> Result<ItemCreated> {
        let token = new.client_token.as_ref().map(|t| t.as_str());
        let mut tx = self.pool.begin().await?;
        if let Some(earlier) = item_by_token(&mut tx, owner, token).await? {
            return Ok(ItemCreated::Item(earlier));
        }
        // Share-locked: the library cannot be deleted before this commits.
        let library = sqlx::query_scalar!(
            "SELECT name FROM libraries WHERE id = $1 FOR SHARE",
            new.library_id.0
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(library_name) = library else {
            return Ok(ItemCreated::NoSuchLibrary);
        };
        let id = sqlx::query_scalar!(
            r#"INSERT INTO library_items
                 (id, library_id, name, description, type, created_by, client_token)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING
               RETURNING id AS "id: ItemId""#,
            ItemId::new_random().0,
            new.library_id.0,
            new.name.as_str(),
            new.description.as_str(),
            new.item_type.as_str(),
            owner,
            token
        )
        .fetch_optional(&mut *tx)
        .await?;
        let created = match id {
            Some(id) => ItemCreated::Item(id),
            None => match item_by_token(&mut tx, owner, token).await? {
                Some(earlier) => ItemCreated::Item(earlier),
                None => ItemCreated::DuplicateName { library_name },
            },
        };
        tx.commit().await?;
        Ok(created)
    }

    /// Changes name, description and type; `version` and `metadata_version`
    /// grow when something changed.
    pub async fn update_item(&self, id: ItemId, update: &ItemUpdate) -> Result<Updated> {
        let mut tx = self.pool.begin().await?;
        let current = sqlx::query!(
            r#"SELECT i.name, i.description, i.type, i.version,
                   l.id AS "library_id: LibraryId", l.name AS library_name
               FROM library_items i JOIN libraries l ON l.id = i.library_id
               WHERE i.id = $1 FOR UPDATE OF i"#,
            id.0
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else {
            return Ok(Updated::NotFound);
        };
        if let Some(stale) = stale(update.version.as_deref(), current.version) {
            return Ok(stale);
        }
        let name = update.name.as_ref().map(|n| n.as_str());
        let description = update.description.as_ref().map(|d| d.as_str());
        let item_type = update.item_type.as_ref().map(ItemType::as_str);
        let changed = changes(name, &current.name)
            || changes(description, &current.description)
            || changes(item_type, &current.r#type);
        if !changed {
            return Ok(Updated::Done);
        }
        let done = sqlx::query!(
            "UPDATE library_items SET name = COALESCE($2, name), \
                 description = COALESCE($3, description), type = COALESCE($4, type), \
                 version = version + 1, metadata_version = metadata_version + 1, \
                 last_modified_time = now() \
             WHERE id = $1",
            id.0,
            name,
            description,
            item_type
        )
        .execute(&mut *tx)
        .await;
        match done {
            Err(e) if violates(&e, ITEM_NAME_INDEX) => {
                return Ok(Updated::DuplicateName {
                    library: Some((current.library_id, current.library_name)),
                })
            }
            done => done?,
        };
        tx.commit().await?;
        Ok(Updated::Done)
    }

    /// Deletes an item and its files; its download sessions go to ERROR in the
    /// same transaction. False when there was no such item.
    pub async fn delete_item(&self, id: ItemId, why: &Revocation<'_>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Waits for session creates that share-locked the item; later ones find it gone.
        let deleted =
            sqlx::query_scalar!("DELETE FROM library_items WHERE id = $1 RETURNING id", id.0)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(deleted) = deleted else {
            return Ok(false);
        };
        revoke_sessions(&mut tx, &[deleted], why).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Files of the item's current content version.
    pub async fn list_item_files(&self, item: ItemId) -> Result<Vec<ItemFileRow>> {
        Ok(sqlx::query_as!(
            ItemFileRow,
            "SELECT f.name, f.size, f.sha256, f.content_key, f.content_version \
             FROM item_files f JOIN library_items i \
               ON i.id = f.item_id AND i.content_version = f.content_version \
             WHERE f.item_id = $1 ORDER BY f.name",
            item.0
        )
        .fetch_all(&self.pool)
        .await?)
    }

    // --------------------------------------------------------------- import

    /// Records an import: finds the library and the item by name (without case),
    /// creating them when missing, and makes `files` the item's next content
    /// version. A new item gets `item_type`; an existing one changes to it when
    /// given. The files' content objects must have been reserved
    /// ([`Db::reserve_content`]) before their objects were written.
    pub async fn import_item(
        &self,
        library: &str,
        item: &str,
        item_type: &ItemType,
        type_given: bool,
        files: &[NewItemFile],
    ) -> Result<Imported> {
        let mut tx = self.pool.begin().await?;
        let created_library = sqlx::query_scalar!(
            "INSERT INTO libraries (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id",
            LibraryId::new_random().0,
            library
        )
        .fetch_optional(&mut *tx)
        .await?;
        let library_id = match created_library {
            Some(id) => id,
            None => {
                sqlx::query_scalar!(
                    "SELECT id FROM libraries WHERE lower(name) = lower($1)",
                    library
                )
                .fetch_one(&mut *tx)
                .await?
            }
        };
        // A new item starts at version 1; an existing one moves to the next version.
        let created = sqlx::query!(
            r#"INSERT INTO library_items (id, library_id, name, type, content_version)
               VALUES ($1, $2, $3, $4, 1)
               ON CONFLICT (library_id, lower(name)) DO UPDATE
                 SET content_version = library_items.content_version + 1,
                     last_modified_time = now(),
                     type = CASE WHEN $5 THEN EXCLUDED.type ELSE library_items.type END,
                     version = library_items.version
                         + (CASE WHEN $5 AND EXCLUDED.type <> library_items.type THEN 1 ELSE 0 END),
                     metadata_version = library_items.metadata_version
                         + (CASE WHEN $5 AND EXCLUDED.type <> library_items.type THEN 1 ELSE 0 END)
               RETURNING id AS "id: ItemId", content_version"#,
            ItemId::new_random().0,
            library_id,
            item,
            item_type.as_str(),
            type_given
        )
        .fetch_one(&mut *tx)
        .await?;
        let mut keys: Vec<&str> = files.iter().map(|f| f.content_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        if touch_content(&mut tx, &keys).await? < keys.len() as u64 {
            return Ok(Imported::ContentCollected);
        }
        for f in files {
            sqlx::query!(
                "INSERT INTO item_files (item_id, content_version, name, size, sha256, content_key) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                created.id.0,
                created.content_version,
                f.name.as_str(),
                f.size,
                f.sha256,
                f.content_key
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Imported::Version(created.id, created.content_version))
    }

    // ------------------------------------------------------ content objects

    /// Reserves `key` before an object is written under it: records it as just
    /// used. False while a collector deletes an older object under that key:
    /// the caller waits and tries again, or its fresh object could be the one deleted.
    pub async fn reserve_content(&self, key: &str) -> Result<bool> {
        let row = sqlx::query_scalar!(
            "INSERT INTO content_objects (content_key) VALUES ($1) \
             ON CONFLICT (content_key) DO UPDATE SET last_used_at = now() \
                 WHERE content_objects.deleting_since IS NULL \
             RETURNING content_key",
            key
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// [`reserve_content`](Db::reserve_content), tried again every 200 ms while
    /// a collector is still deleting an older object under `key`, for at most
    /// `patience`. False if it still was.
    pub async fn reserve_content_within(&self, key: &str, patience: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if self.reserve_content(key).await? {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// First step of collecting content: marks up to `batch` objects that no item
    /// file (nor an update session's received file) references, no worker is staging from and nobody reserved for
    /// `grace` (plus any whose collector died half-way). Returns their keys.
    pub async fn mark_content_for_deletion(
        &self,
        grace: Duration,
        stale: Duration,
        batch: i64,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar!(
            "UPDATE content_objects SET deleting_since = now() \
             WHERE content_key IN ( \
                 SELECT c.content_key FROM content_objects c \
                 WHERE (c.deleting_since IS NULL \
                        AND c.last_used_at < now() - $1 * interval '1 second' \
                        AND NOT EXISTS (SELECT 1 FROM item_files f \
                                        WHERE f.content_key = c.content_key) \
                        AND NOT EXISTS (SELECT 1 FROM update_files u \
                                        WHERE u.content_key = c.content_key) \
                        AND NOT EXISTS (SELECT 1 FROM download_files d \
                                        WHERE d.content_key = c.content_key \
                                          AND d.status IN ('PREPARE_REQUESTED', 'PREPARING'))) \
                    OR c.deleting_since < now() - $3 * interval '1 second' \
                 ORDER BY c.last_used_at \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING content_key",
            secs(grace),
            batch,
            secs(stale)
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Last step of collecting content: drops marked rows whose objects are gone.
    pub async fn delete_marked_content(&self, keys: &[String]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query!(
            "DELETE FROM content_objects WHERE content_key = ANY($1) AND deleting_since IS NOT NULL",
            keys
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// The library `owner` created with `token`, if any.
async fn library_by_token(
    tx: &mut PgConnection,
    owner: Uuid,
    token: Option<&str>,
) -> Result<Option<LibraryId>> {
    let Some(token) = token else {
        return Ok(None);
    };
    Ok(sqlx::query_scalar!(
        r#"SELECT id AS "id: LibraryId" FROM libraries WHERE created_by = $1 AND client_token = $2"#,
        owner,
        token
    )
    .fetch_optional(tx)
    .await?)
}

/// The item `owner` created with `token`, if any.
async fn item_by_token(
    tx: &mut PgConnection,
    owner: Uuid,
    token: Option<&str>,
) -> Result<Option<ItemId>> {
    let Some(token) = token else {
        return Ok(None);
    };
    Ok(sqlx::query_scalar!(
        r#"SELECT id AS "id: ItemId" FROM library_items WHERE created_by = $1 AND client_token = $2"#,
        owner,
        token
    )
    .fetch_optional(tx)
    .await?)
}

/// Marks content objects as used now, inside the recording transaction; returns
/// how many of `keys` were still there and not being collected.
pub(super) async fn touch_content(tx: &mut PgConnection, keys: &[&str]) -> Result<u64> {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let done = sqlx::query!(
        "UPDATE content_objects SET last_used_at = now() \
         WHERE content_key = ANY($1) AND deleting_since IS NULL",
        &keys
    )
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every download session of `items` (being deleted in `tx`): live ones go
/// to ERROR, and every file of every one of them to ERROR, with claims and prepared
/// bytes dropped (the artifact is collected once no other file uses it). Their URIs stop at once on every instance: validity is these rows.
async fn revoke_sessions(
    tx: &mut PgConnection,
    items: &[Uuid],
    why: &Revocation<'_>,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE download_sessions s SET state = 'ERROR', error_message = jsonb_build_object( \
             'id', $2::text, 'default_message', format($3::text, s.library_item_id), \
             'args', jsonb_build_array(s.library_item_id::text)) \
         WHERE s.library_item_id = ANY($1) AND s.state = 'ACTIVE'",
        items,
        why.session_id,
        why.session_text
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE download_files f SET status = 'ERROR', error_message = jsonb_build_object( \
             'id', $2::text, 'default_message', format($3::text, s.library_item_id), \
             'args', jsonb_build_array(s.library_item_id::text)), \
             lease_owner = NULL, lease_until = NULL, artifact_sha256 = NULL, checksum = NULL, \
             updated_at = now() \
         FROM download_sessions s \
         WHERE f.session_id = s.id AND s.library_item_id = ANY($1)",
        items,
        why.file_id,
        why.file_text
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
