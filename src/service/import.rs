//! `download-sessions import`: files into the content store (content-addressed
//! by SHA-256, hashed while copied) and a new content version of the item.

use std::path::Path;

use anyhow::Context;
use object_store::{buffered::BufWriter, path::Path as ObjectPath, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::{
    domain::{FileName, ItemId},
    storage::{content_key, Bucket},
    store::{catalog::NewItemFile, Db},
};

/// Imports `files` as the next content version of `library`/`item` (both
/// created when missing). Returns the item id and its new content version.
pub async fn import_files(
    db: &Db,
    content: &Bucket,
    library: &str,
    item: &str,
    files: &[&Path],
) -> anyhow::Result<(ItemId, i64)> {
    anyhow::ensure!(!library.trim().is_empty(), "the library name is empty");
    anyhow::ensure!(!item.trim().is_empty(), "the item name is empty");
    anyhow::ensure!(!files.is_empty(), "no files to import");
    let mut new_files = Vec::with_capacity(files.len());
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", path.display()))?;
        let name = FileName::parse(name).with_context(|| path.display().to_string())?;
        anyhow::ensure!(
            !new_files.iter().any(|f: &NewItemFile| f.name == name),
            "two files are named {name}"
        );
        let (size, sha256) = copy_in(content, path)
            .await
            .with_context(|| format!("cannot import {}", path.display()))?;
        new_files.push(NewItemFile {
            name,
            size,
            sha256: sha256.clone(),
            content_key: content_key(&sha256),
        });
    }
    db.import_item(library, item, &new_files)
        .await
        .context("cannot record the import")
}

/// Streams one file into the content store, returning its size and SHA-256.
async fn copy_in(content: &Bucket, path: &Path) -> anyhow::Result<(i64, String)> {
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
    let sha256 = hex::encode(hasher.finalize());
    // Same bytes, same key: a re-import of identical content stores nothing new.
    content
        .inner
        .rename(&incoming, &ObjectPath::from(content_key(&sha256)))
        .await?;
    Ok((size, sha256))
}
