//! Where clients may address the content store's objects themselves (item storage's
//! `storage_uris`, libraries' `storage_backings`), without ever disclosing a path
//! that only makes sense on the server.

use url::Url;

use crate::{
    config::StoreSettings,
    domain::models::{StorageBacking, StorageBackingType},
};

/// The content store as clients see it: a base URI its keys extend, or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentLocation {
    base: Option<Url>,
}

impl ContentLocation {
    /// `direct_base` when configured (e.g. `file:///mnt/library/`, the share as
    /// clients mount it); else `s3://bucket/` for an S3 store, which clients with
    /// credentials for the bucket can read; else none: a local directory's own
    /// path is the server's business.
    pub fn from_settings(cfg: &StoreSettings) -> ContentLocation {
        let base = match (&cfg.direct_base, cfg.kind.as_str(), &cfg.bucket) {
            (Some(base), _, _) => Url::parse(base).ok(),
            (None, "s3", Some(bucket)) => Url::parse(&format!("s3://{bucket}/")).ok(),
            _ => None,
        };
        ContentLocation {
            // A base whose path does not end in `/` would lose its last segment on join.
            base: base.map(|mut url| {
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                url
            }),
        }
    }

    /// The storage backing of every library and file: the content store.
    pub fn backing(&self) -> StorageBacking {
        StorageBacking {
            backing_type: StorageBackingType::Other,
            datastore_id: None,
            storage_uri: self.base.as_ref().map(Url::to_string),
        }
    }

    /// The URI of the object under `key`, when clients have a base to use.
    pub fn uri_of(&self, key: &str) -> Option<String> {
        // Keys are `blobs/<hex>`: nothing to escape, and join keeps them relative.
        self.base
            .as_ref()
            .and_then(|base| base.join(key).ok())
            .map(String::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(kind: &str, bucket: Option<&str>, base: Option<&str>) -> StoreSettings {
        StoreSettings {
            kind: kind.into(),
            path: Some("content".into()),
            bucket: bucket.map(Into::into),
            region: None,
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
            allow_http: false,
            public_endpoint: None,
            direct_base: base.map(Into::into),
        }
    }

    #[test]
    fn local_stores_disclose_nothing_without_a_base() {
        let l = ContentLocation::from_settings(&store("local", None, None));
        assert_eq!(l.uri_of("blobs/ab"), None);
        assert_eq!(l.backing().storage_uri, None);
        assert_eq!(l.backing().backing_type, StorageBackingType::Other);
    }

    #[test]
    fn bases_and_buckets() {
        let l = ContentLocation::from_settings(&store("local", None, Some("file:///mnt/lib")));
        assert_eq!(
            l.uri_of("blobs/ab").as_deref(),
            Some("file:///mnt/lib/blobs/ab")
        );
        assert_eq!(l.backing().storage_uri.as_deref(), Some("file:///mnt/lib/"));
        let s = ContentLocation::from_settings(&store("s3", Some("dls-content"), None));
        assert_eq!(
            s.uri_of("blobs/ab").as_deref(),
            Some("s3://dls-content/blobs/ab")
        );
        let c = ContentLocation::from_settings(&store(
            "s3",
            Some("b"),
            Some("https://cdn.example.com/content/"),
        ));
        assert_eq!(
            c.uri_of("blobs/ab").as_deref(),
            Some("https://cdn.example.com/content/blobs/ab")
        );
    }
}
