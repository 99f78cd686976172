//! `download-sessions import`: files into the content store (content-addressed
//! by SHA-256, reserved against the collector, written straight to their key
//! and committed there only once verified and durable) and a new content
//! version of the item, whose type is given or guessed.

use std::{io::Read, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use object_store::path::Path as ObjectPath;
use sha2::{Digest as _, Sha256};

use crate::{
    domain::{
        catalog::{ItemName, ItemType, LibraryName},
        FileName, ItemId,
    },
    storage::{content_key, stage::Digest, Bucket},
    store::{
        catalog::{Imported, NewItemFile},
        Db,
    },
    worker::stage::{self, Control, Sink, Source, StageError, StageTuning},
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
        // The key is the bytes' hash: known before anything is written.
        let digest = hash_file(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        copied.push((name, digest));
    }
    // Every file is hashed and named; now each object is written under its key,
    // reserved against the collector just before (a key collected while later
    // files were written is reported by the catalog write). The catalog commits
    // only after every object is durable.
    let mut new_files = Vec::with_capacity(copied.len());
    for ((name, digest), path) in copied.into_iter().zip(files) {
        // Same bytes, same key: a re-import of identical content stores the same object.
        let key = content_key(&digest.sha256);
        reserve(db, &key).await?;
        write_verified(content, path, &key, &digest)
            .await
            .with_context(|| format!("cannot import {}", path.display()))?;
        new_files.push(NewItemFile {
            name,
            size: i64::try_from(digest.size).context("file too large")?,
            sha256: digest.sha256,
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
    let reserved = db
        .reserve_content_within(key, RESERVE_PATIENCE)
        .await
        .context("cannot reserve content")?;
    anyhow::ensure!(
        reserved,
        "content {key} is still being deleted by the collector; import again later"
    );
    Ok(())
}

/// SHA-256 and size of a local file.
async fn hash_file(path: &Path) -> anyhow::Result<Digest> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 4 << 20];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(Digest {
            sha256: hex::encode(hasher.finalize()),
            size,
        })
    })
    .await?
}

/// Copies `path` to `key` with the staging pipeline: committed (durable) only
/// when the bytes still are the `expected` ones, hashed a second time on the way.
async fn write_verified(
    content: &Bucket,
    path: &Path,
    key: &str,
    expected: &Digest,
) -> anyhow::Result<()> {
    let sink = match content.local_path(key) {
        Some(dest) => Sink::Local(dest),
        None => Sink::Remote(content.inner.clone(), ObjectPath::from(key)),
    };
    let source = Source::Local(path.to_path_buf());
    let ctl = Arc::new(Control::default());
    match stage::stage(source, sink, expected, &StageTuning::default(), ctl).await {
        Ok(_) => Ok(()),
        Err(StageError::SizeMismatch { .. } | StageError::ChecksumMismatch { .. }) => {
            anyhow::bail!("the file changed while it was imported; import again")
        }
        Err(StageError::SourceMissing) => anyhow::bail!("the file disappeared while imported"),
        Err(StageError::Read(e)) => Err(e.context("cannot read the file")),
        Err(StageError::Write(e)) => Err(e.context("cannot write the content store")),
        Err(StageError::Internal(e)) => Err(e),
        Err(StageError::Canceled | StageError::Disconnected) => {
            anyhow::bail!("the copy stopped unexpectedly")
        }
    }
}
