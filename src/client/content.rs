//! The Content Library operations a downloader needs, as `/api` calls: find
//! an item by `LIBRARY/ITEM` (falling back to listing), and download sessions.

use reqwest::{header::HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{
    api::{Api, CallError, Message},
    failure::{Failure, FailureKind, Result},
};

const LIBRARY: &str = "/api/content/library";
const ITEM: &str = "/api/content/library/item";
const SESSIONS: &str = "/api/content/library/item/download-session";

#[derive(Clone, Debug, Deserialize)]
pub struct LibraryModel {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ItemModel {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub library_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SessionModel {
    pub state: String,
    #[serde(default)]
    pub expiration_time: Option<String>,
    #[serde(default)]
    pub error_message: Option<Message>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Endpoint {
    pub uri: String,
    #[serde(default)]
    pub ssl_certificate_thumbprint: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChecksumInfo {
    #[serde(default)]
    pub algorithm: Option<String>,
    pub checksum: String,
}

/// `downloadsession.file` File.Info.
#[derive(Clone, Debug, Deserialize)]
pub struct FileInfo {
    pub name: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub bytes_transferred: Option<u64>,
    pub status: String,
    #[serde(default)]
    pub download_endpoint: Option<Endpoint>,
    #[serde(default)]
    pub checksum_info: Option<ChecksumInfo>,
    #[serde(default)]
    pub error_message: Option<Message>,
}

/// A file of a library item as the catalog lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct ItemFile {
    pub name: String,
    #[serde(default)]
    pub size: Option<u64>,
}

/// The item's file sizes from the catalog (download sessions may know a
/// size only once the file is prepared). Best effort: empty when refused.
pub async fn item_file_sizes(api: &Api, item_id: &str) -> Vec<ItemFile> {
    api.get(&format!("{ITEM}/{item_id}/file"))
        .await
        .unwrap_or_default()
}

/// What the user named: an item id, or a library and an item by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemRef {
    Id(String),
    Path { library: String, item: String },
}

impl ItemRef {
    /// `LIBRARY/ITEM` (split at the first `/`) or a well-formed item id.
    pub fn parse(text: &str) -> Result<ItemRef> {
        if let Some((library, item)) = text.split_once('/') {
            if library.is_empty() || item.is_empty() {
                return Err(Failure::usage(format!(
                    "{text:?}: expected LIBRARY/ITEM with both names given, or an item id"
                )));
            }
            return Ok(ItemRef::Path {
                library: library.to_string(),
                item: item.to_string(),
            });
        }
        match uuid::Uuid::parse_str(text) {
            Ok(_) => Ok(ItemRef::Id(text.to_string())),
            Err(_) => Err(Failure::usage(format!(
                "{text:?} is neither LIBRARY/ITEM nor an item id (a UUID such as \
                 1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79)"
            ))),
        }
    }
}

/// The item to download, with names for messages.
#[derive(Clone, Debug)]
pub struct ResolvedItem {
    pub id: String,
    pub label: String,
}

/// Whether an answer means "this server has no such operation" (older servers).
fn no_such_operation(e: &CallError) -> bool {
    match e {
        CallError::Status {
            status, error_type, ..
        } => {
            matches!(
                *status,
                StatusCode::NOT_FOUND
                    | StatusCode::METHOD_NOT_ALLOWED
                    | StatusCode::NOT_IMPLEMENTED
            ) || error_type.as_deref() == Some("OPERATION_NOT_FOUND")
        }
        _ => false,
    }
}

/// Resolves what the user named to an item id.
pub async fn resolve_item(api: &Api, what: &ItemRef) -> Result<ResolvedItem> {
    match what {
        ItemRef::Id(id) => {
            let item: ItemModel =
                api.get(&format!("{ITEM}/{id}"))
                    .await
                    .map_err(|e| match e.status() {
                        Some(StatusCode::NOT_FOUND) => Failure::not_found(format!(
                            "there is no library item with id {id} (or user {} may not see it)",
                            api.user()
                        )),
                        _ => api.failure(e, "reading the library item"),
                    })?;
            let label = item.name.unwrap_or_else(|| id.clone());
            Ok(ResolvedItem {
                id: id.clone(),
                label,
            })
        }
        ItemRef::Path { library, item } => {
            let library_id = find_library(api, library).await?;
            let id = find_item(api, &library_id, library, item).await?;
            Ok(ResolvedItem {
                id,
                label: format!("{library}/{item}"),
            })
        }
    }
}

async fn find_library(api: &Api, name: &str) -> Result<String> {
    let found: std::result::Result<Vec<String>, CallError> = api
        .post(&format!("{LIBRARY}?action=find"), &json!({ "name": name }))
        .await;
    let candidates = match found {
        Ok(ids) => ids,
        Err(e) if no_such_operation(&e) => {
            // No find: list every library the user can see.
            api.get::<Vec<String>>(LIBRARY)
                .await
                .map_err(|e| api.failure(e, "listing libraries"))?
        }
        Err(e) => return Err(api.failure(e, "finding the library")),
    };
    let mut named = Vec::new();
    for id in candidates {
        let lib: LibraryModel = match api.get(&format!("{LIBRARY}/{id}")).await {
            Ok(l) => l,
            // Deleted between the listing and now.
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => continue,
            Err(e) => return Err(api.failure(e, "reading a library")),
        };
        named.push((id, lib.name.unwrap_or_default()));
    }
    pick(named, name).map_err(|problem| match problem {
        Pick::None => Failure::not_found(format!(
            "there is no library named {name:?} (visible to user {}); check the name, \
             or pass the item id instead of LIBRARY/ITEM",
            api.user()
        )),
        Pick::Ambiguous(ids) => Failure::new(
            FailureKind::Usage,
            format!(
                "{} libraries are named {name:?} (ids {}); pass the item id instead of LIBRARY/ITEM",
                ids.len(),
                ids.join(", ")
            ),
        ),
    })
}

async fn find_item(api: &Api, library_id: &str, library: &str, name: &str) -> Result<String> {
    let found: std::result::Result<Vec<String>, CallError> = api
        .post(
            &format!("{ITEM}?action=find"),
            &json!({ "name": name, "library_id": library_id }),
        )
        .await;
    let candidates = match found {
        Ok(ids) => ids,
        Err(e) if no_such_operation(&e) => api
            .get::<Vec<String>>(&format!("{ITEM}?library_id={}", encode(library_id)))
            .await
            .map_err(|e| api.failure(e, "listing the library's items"))?,
        Err(e) => return Err(api.failure(e, "finding the item")),
    };
    let mut named = Vec::new();
    for id in candidates {
        let item: ItemModel = match api.get(&format!("{ITEM}/{id}")).await {
            Ok(i) => i,
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => continue,
            Err(e) => return Err(api.failure(e, "reading a library item")),
        };
        // A find that ignored library_id must not hand us another library's item.
        if item.library_id.as_deref().is_some_and(|l| l != library_id) {
            continue;
        }
        named.push((id, item.name.unwrap_or_default()));
    }
    pick(named, name).map_err(|problem| match problem {
        Pick::None => Failure::not_found(format!(
            "library {library:?} has no item named {name:?}; check the name"
        )),
        Pick::Ambiguous(ids) => Failure::new(
            FailureKind::Usage,
            format!(
                "library {library:?} has {} items named {name:?} (ids {}); pass the item id instead",
                ids.len(),
                ids.join(", ")
            ),
        ),
    })
}

enum Pick {
    None,
    Ambiguous(Vec<String>),
}

/// VMware's find compares names case-insensitively; an exact match wins
/// over others that differ only in case.
fn pick(named: Vec<(String, String)>, name: &str) -> std::result::Result<String, Pick> {
    let loose: Vec<&(String, String)> = named
        .iter()
        .filter(|(_, n)| n.to_lowercase() == name.to_lowercase())
        .collect();
    let exact: Vec<&(String, String)> = loose.iter().copied().filter(|(_, n)| n == name).collect();
    let chosen = if exact.is_empty() { loose } else { exact };
    match chosen.as_slice() {
        [] => Err(Pick::None),
        [(id, _)] => Ok(id.clone()),
        many => Err(Pick::Ambiguous(
            many.iter().map(|(id, _)| id.clone()).collect(),
        )),
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A download session of ours on the server.
#[derive(Clone, Debug)]
pub struct DownloadSession {
    pub id: String,
}

impl DownloadSession {
    /// Creates a session; `client_token` makes a retried create answer the same session.
    pub async fn create(api: &Api, item_id: &str, client_token: &str) -> Result<DownloadSession> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Client-Token",
            client_token
                .parse()
                .map_err(|_| Failure::other("client token is not a header value"))?,
        );
        let id: String = api
            .post_with(SESSIONS, &json!({ "library_item_id": item_id }), headers)
            .await
            .map_err(|e| match e.status() {
                Some(StatusCode::FORBIDDEN) => Failure::new(
                    FailureKind::Authentication,
                    format!(
                        "user {} may not create download sessions: the \
                         ContentLibrary.DownloadSession privilege is needed; ask an administrator",
                        api.user()
                    ),
                ),
                Some(StatusCode::NOT_FOUND) => Failure::not_found(format!(
                    "the library item {item_id} disappeared before the download could start"
                )),
                _ => api.failure(e, "creating the download session"),
            })?;
        Ok(DownloadSession { id })
    }

    fn path(&self) -> String {
        format!("{SESSIONS}/{}", self.id)
    }

    pub async fn get(&self, api: &Api) -> std::result::Result<SessionModel, CallError> {
        api.get(&self.path()).await
    }

    pub async fn files(&self, api: &Api) -> std::result::Result<Vec<FileInfo>, CallError> {
        api.get(&format!("{}/file", self.path())).await
    }

    pub async fn file(&self, api: &Api, name: &str) -> std::result::Result<FileInfo, CallError> {
        api.get(&format!("{}/file?file_name={}", self.path(), encode(name)))
            .await
    }

    pub async fn prepare(&self, api: &Api, name: &str) -> std::result::Result<FileInfo, CallError> {
        api.post(
            &format!("{}/file?action=prepare", self.path()),
            &json!({ "file_name": name, "endpoint_type": "HTTPS" }),
        )
        .await
    }

    pub async fn keep_alive(&self, api: &Api, progress: u8) -> std::result::Result<(), CallError> {
        api.post_void(
            &format!("{}?action=keep-alive", self.path()),
            &json!({ "progress": progress }),
        )
        .await
    }

    pub async fn delete(&self, api: &Api) -> std::result::Result<(), CallError> {
        api.delete(&self.path()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_refs() {
        assert_eq!(
            ItemRef::parse("isos/demo").unwrap(),
            ItemRef::Path {
                library: "isos".into(),
                item: "demo".into()
            }
        );
        assert_eq!(
            ItemRef::parse("isos/a/b").unwrap(),
            ItemRef::Path {
                library: "isos".into(),
                item: "a/b".into()
            }
        );
        let id = "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79";
        assert_eq!(ItemRef::parse(id).unwrap(), ItemRef::Id(id.into()));
        for bad in ["demo", "/demo", "isos/", ""] {
            assert_eq!(
                ItemRef::parse(bad).unwrap_err().kind,
                FailureKind::Usage,
                "{bad}"
            );
        }
    }

    #[test]
    fn exact_name_beats_case_variants() {
        let named = vec![
            ("1".to_string(), "ISOs".to_string()),
            ("2".into(), "isos".into()),
        ];
        assert_eq!(pick(named.clone(), "isos").ok(), Some("2".into()));
        assert!(matches!(pick(named, "Isos"), Err(Pick::Ambiguous(ids)) if ids.len() == 2));
        let twins = vec![("1".to_string(), "a".to_string()), ("2".into(), "a".into())];
        assert!(matches!(pick(twins, "a"), Err(Pick::Ambiguous(_))));
        assert!(matches!(pick(vec![], "a"), Err(Pick::None)));
    }
}
