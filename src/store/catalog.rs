//! Libraries, items and item files.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use crate::error::Result;

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct LibraryRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub creation_time: DateTime<Utc>,
    pub last_modified_time: DateTime<Utc>,
}

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct ItemRow {
    pub id: Uuid,
    pub library_id: Uuid,
    pub name: String,
    pub r#type: String,
    pub description: String,
    pub content_version: i64,
    pub size: i64,
    pub creation_time: DateTime<Utc>,
    pub last_modified_time: DateTime<Utc>,
}

#[derive(sqlx::FromRow, Clone, Debug)]
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
    pub name: String,
    pub size: i64,
    pub sha256: String,
    pub content_key: String,
}

const ITEM_COLUMNS: &str = "i.id, i.library_id, i.name, i.type, i.description, i.content_version, \
     i.creation_time, i.last_modified_time, \
     COALESCE((SELECT sum(f.size) FROM item_files f \
               WHERE f.item_id = i.id AND f.content_version = i.content_version), 0)::bigint AS size";

impl Store {
    pub async fn list_libraries(&self) -> Result<Vec<LibraryRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, description, creation_time, last_modified_time \
             FROM libraries ORDER BY creation_time, id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn get_library(&self, id: Uuid) -> Result<Option<LibraryRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, description, creation_time, last_modified_time \
             FROM libraries WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Ids of a library's items (no sizes: listing needs none).
    pub async fn list_item_ids(&self, library_id: Uuid) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM library_items WHERE library_id = $1 ORDER BY creation_time, id",
        )
        .bind(library_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn library_exists(&self, id: Uuid) -> Result<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM libraries WHERE id = $1)")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn item_exists(&self, id: Uuid) -> Result<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM library_items WHERE id = $1)")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn get_item(&self, id: Uuid) -> Result<Option<ItemRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ITEM_COLUMNS} FROM library_items i WHERE i.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Files of the item's current content version.
    pub async fn list_item_files(&self, item_id: Uuid) -> Result<Vec<ItemFileRow>> {
        Ok(sqlx::query_as(
            "SELECT f.name, f.size, f.sha256, f.content_key, f.content_version \
             FROM item_files f JOIN library_items i \
               ON i.id = f.item_id AND i.content_version = f.content_version \
             WHERE f.item_id = $1 ORDER BY f.name",
        )
        .bind(item_id)
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
    ) -> Result<(Uuid, i64)> {
        let mut tx = self.pool.begin().await?;
        let library_id: Uuid = sqlx::query_scalar(
            "INSERT INTO libraries (id, name) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_modified_time = now() RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(library)
        .fetch_one(&mut *tx)
        .await?;
        // A new item starts at version 1; an existing one moves to the next version.
        let (item_id, version): (Uuid, i64) = sqlx::query_as(
            "INSERT INTO library_items (id, library_id, name, content_version) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (library_id, name) DO UPDATE \
               SET content_version = library_items.content_version + 1, last_modified_time = now() \
             RETURNING id, content_version",
        )
        .bind(Uuid::new_v4())
        .bind(library_id)
        .bind(item)
        .fetch_one(&mut *tx)
        .await?;
        for f in files {
            sqlx::query(
                "INSERT INTO item_files (item_id, content_version, name, size, sha256, content_key) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(item_id)
            .bind(version)
            .bind(&f.name)
            .bind(f.size)
            .bind(&f.sha256)
            .bind(&f.content_key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((item_id, version))
    }
}
