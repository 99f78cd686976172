//! `download-sessions import`: files into the content store (content-addressed
//! by SHA-256, hashed while copied, reserved against the collector) and a new
//! content version of the item, whose type is given or guessed.

use std::{path::Path, time::Duration};

use anyhow::Context;
use object_store::{buffered::BufWriter, path::Path as ObjectPath, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::{
    domain::{
        catalog::{ItemName, ItemType, LibraryName},
        FileName, ItemId,
    },
    storage::{content_key, Bucket},
    store::{
        catalog::{Imported, NewItemFile},
        Db,
    },
};

/// How long an import waits for a collector to finish deleting an older object
/// under the key of the bytes it is storing.
const RESERVE_PATIENCE: Duration = Duration::from_secs(60);

/// Imports `files` as the next content version of `library`/`item` (both
/// created when missing, found by name without case). A new item gets
/// `item_type`, or the type guessed from the file names ([`ItemType::guess`]);
/// an existing one changes to `item_type` when it is given. Returns the item id
/// and its new content version.
pub async fn import_files(
    db: &Db,
    content: &Bucket,
    library: &str,
    item: &str,
    item_type: Option<&str>,
    files: &[&Path],
) -> anyhow::Result<(ItemId, i64)> {
    LibraryName::parse(library).map_err(|e| anyhow::anyhow!("library: {e}"))?;
    ItemName::parse(item).map_err(|e| anyhow::anyhow!("item: {e}"))?;
    let given = item_type
        .map(ItemType::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--type: {e}"))?
        .flatten();
    anyhow::ensure!(!files.is_empty(), "no files to import");
    let mut copied = Vec::with_capacity(files.len());
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", path.display()))?;
        let name = FileName::parse(name).with_context(|| path.display().to_string())?;
        anyhow::ensure!(
            !copied.iter().any(|(n, _): &(FileName, _)| *n == name),
            "two files are named {name}"
        );
        let copy = copy_in(content, path)
            .await
            .with_context(|| format!("cannot import {}", path.display()))?;
        copied.push((name, copy));
    }
    // Every file is in; only now are their objects put under their keys (after
    // reserving them against the collector), so a long import of many files
    // cannot outlast the collection grace of the first one.
    let mut new_files = Vec::with_capacity(copied.len());
    for (name, (incoming, size, sha256)) in copied {
        // Same bytes, same key: a re-import of identical content stores nothing new.
        let key = content_key(&sha256);
        reserve(db, &key).await?;
        content
            .inner
            .rename(&incoming, &ObjectPath::from(key.as_str()))
            .await
            .with_context(|| format!("cannot store {name}"))?;
        new_files.push(NewItemFile {
            name,
            size,
            sha256,
            content_key: key,
        });
    }
    let guessed = ItemType::guess(new_files.iter().map(|f| f.name.as_str()));
    let item_type = given.as_ref().unwrap_or(&guessed);
    match db
        .import_item(library, item, item_type, given.is_some(), &new_files)
        .await
        .context("cannot record the import")?
    {
        Imported::Version(id, version) => Ok((id, version)),
        Imported::ContentCollected => anyhow::bail!(
            "the content store collected an object of this import while it ran; import again"
        ),
    }
}

/// Reserves a content key, waiting while a collector deletes an older object under it.
async fn reserve(db: &Db, key: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + RESERVE_PATIENCE;
    while !db
        .reserve_content(key)
        .await
        .context("cannot reserve content")?
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "content {key} is still being deleted by the collector; import again later"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Streams one file into the content store under a temporary key, returning
/// that key, the size and the SHA-256.
async fn copy_in(content: &Bucket, path: &Path) -> anyhow::Result<(ObjectPath, i64, String)> {
    let mut file = tokio::fs::File::open(path).await?;
    let incoming = ObjectPath::from(format!("incoming/{}", Uuid::new_v4()));
    let mut writer = BufWriter::new(content.inner.clone(), incoming.clone());
    let mut hasher = Sha256::new();
    let mut size: i64 = 0;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n]).await?;
        size += n as i64;
    }
    writer.shutdown().await?;
    Ok((incoming, size, hex::encode(hasher.finalize())))
}
