//! Libraries, items and item files.

use chrono::{DateTime, Utc};

use super::{Db, Result};
use crate::domain::{FileName, ItemId, LibraryId};

#[derive(Clone, Debug)]
pub struct LibraryRow {
    pub id: LibraryId,
    pub name: String,
    pub description: String,
    pub creation_time: DateTime<Utc>,
    pub last_modified_time: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct ItemRow {
    pub id: ItemId,
    pub library_id: LibraryId,
    pub name: String,
    pub r#type: String,
    pub description: String,
    pub content_version: i64,
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

impl Db {
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
            r#"SELECT id AS "id: LibraryId", name, description, creation_time, last_modified_time
               FROM libraries WHERE id = $1"#,
            id.0
        )
        .fetch_optional(&self.pool)
        .await?)
    }

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
                   i.type, i.description, i.content_version, i.creation_time,
                   i.last_modified_time,
                   COALESCE((SELECT sum(f.size) FROM item_files f
                             WHERE f.item_id = i.id AND f.content_version = i.content_version),
                            0)::bigint AS "size!"
               FROM library_items i WHERE i.id = $1"#,
            id.0
        )
        .fetch_optional(&self.pool)
        .await?)
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

    /// Records an import: creates the library and item when missing and makes
    /// `files` the item's next content version. Returns (item id, content version).
    pub async fn import_item(
        &self,
        library: &str,
        item: &str,
        files: &[NewItemFile],
    ) -> Result<(ItemId, i64)> {
        let mut tx = self.pool.begin().await?;
        let library_id = sqlx::query_scalar!(
            "INSERT INTO libraries (id, name) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_modified_time = now() RETURNING id",
            LibraryId::new_random().0,
            library
        )
        .fetch_one(&mut *tx)
        .await?;
        // A new item starts at version 1; an existing one moves to the next version.
        let created = sqlx::query!(
            r#"INSERT INTO library_items (id, library_id, name, content_version)
               VALUES ($1, $2, $3, 1)
               ON CONFLICT (library_id, name) DO UPDATE
                 SET content_version = library_items.content_version + 1,
                     last_modified_time = now()
               RETURNING id AS "id: ItemId", content_version"#,
            ItemId::new_random().0,
            library_id,
            item
        )
        .fetch_one(&mut *tx)
        .await?;
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
        Ok((created.id, created.content_version))
    }
}
