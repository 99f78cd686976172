//! govc against this service, request by request: the sequences of `govc library.ls`,
//! `library.info` and `library.export` (govc's `cli/library`, govmomi's `vapi/library`,
//! `vapi/library/finder` and `vapi/rest`), each answer decoded into the shapes govmomi
//! decodes it into and used the way govc uses it. Every step names the govmomi function
//! it replays.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{header, Method, StatusCode};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};

use crate::helpers::*;

// ------------------------------------------- govmomi's types (vapi/library)

/// `library.Library` (library.go): what govc reads of a library.
#[derive(Debug, Deserialize)]
struct Library {
    id: String,
    name: String,
    description: Option<String>,
    version: String,
    /// govc `library.info` dereferences it.
    creation_time: Option<DateTime<Utc>>,
    #[serde(rename = "type")]
    library_type: String,
    #[serde(default, rename = "storage_backings")]
    storage: Vec<StorageBacking>,
    #[serde(rename = "publish_info")]
    publication: Option<Publication>,
    #[serde(rename = "subscription_info")]
    subscription: Option<Value>,
    #[serde(default)]
    server_guid: String,
}

/// `library.StorageBacking`.
#[derive(Debug, Deserialize)]
struct StorageBacking {
    #[serde(default)]
    datastore_id: String,
    #[serde(rename = "type")]
    backing_type: String,
}

/// `library.Publication`: `Published` is a pointer govc dereferences.
#[derive(Debug, Deserialize)]
struct Publication {
    published: Option<bool>,
}

/// `library.Item` (library_item.go).
#[derive(Debug, Deserialize)]
struct Item {
    id: String,
    library_id: String,
    name: String,
    description: Option<String>,
    #[serde(rename = "type")]
    item_type: String,
    size: i64,
    cached: bool,
    version: String,
    content_version: String,
    creation_time: Option<DateTime<Utc>>,
    last_modified_time: Option<DateTime<Utc>>,
}

/// `library.File` (library_file.go).
#[derive(Debug, Deserialize)]
struct File {
    name: String,
    size: Option<i64>,
    version: String,
}

/// `library.Storage` (library_item_storage.go).
#[derive(Debug, Deserialize)]
struct Storage {
    name: String,
    #[serde(rename = "storage_uris")]
    storage_uris: Vec<String>,
}

/// `library.DownloadFile` (library_item_downloadsession_file.go).
#[derive(Debug, Deserialize)]
struct DownloadFile {
    name: String,
    status: String,
    download_endpoint: Option<TransferEndpoint>,
    error_message: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct TransferEndpoint {
    uri: String,
}

/// A `finder.FindResult`: the object and its inventory path (`GetPath`).
#[derive(Debug)]
enum Found {
    Library(Library),
    Item {
        item: Item,
        path: String,
    },
    File {
        file: File,
        item_id: String,
        path: String,
    },
}

impl Found {
    fn path(&self) -> String {
        match self {
            Found::Library(l) => format!("/{}", l.name),
            Found::Item { path, .. } | Found::File { path, .. } => path.clone(),
        }
    }
}

// ------------------------------------------------------------- the client

/// govc's REST client (`vapi/rest.Client`) logged in as one user.
struct Govc<'a> {
    app: &'a TestApp,
    token: String,
}

/// A request that did not answer 2xx (`rest.Client.Do` turns it into an error).
#[derive(Debug)]
struct Failed(StatusCode);

impl<'a> Govc<'a> {
    /// `session/cache.Session.Login` -> `rest.Client.Login`: Basic credentials and
    /// `vmware-use-header-authn: true`, the token from `{"value"}`.
    async fn login(app: &'a TestApp, user: &str, password: &str) -> Govc<'a> {
        let r = app
            .client
            .post(app.url("/rest/com/vmware/cis/session"))
            .basic_auth(user, Some(password))
            .header("vmware-use-header-authn", "true")
            .send()
            .await
            .unwrap();
        let token = value_of(r).await.as_str().unwrap().to_string();
        Govc { app, token }
    }

    /// `rest.Client.Do`: the session header and `Accept: application/json` on every
    /// request, a JSON body (with its content type) on POST and PATCH; 2xx is success
    /// and the answer's `value` is decoded into `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, Failed> {
        let mut r = self
            .app
            .client
            .request(method, self.app.url(&format!("/rest{path}")))
            .header("vmware-api-session-id", &self.token)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap();
        if !r.status().is_success() {
            return Err(Failed(r.status()));
        }
        #[derive(Deserialize)]
        struct Envelope<T> {
            value: T,
        }
        Ok(r.json::<Envelope<T>>()
            .await
            .expect("govmomi decodes the answer")
            .value)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failed> {
        self.call(Method::GET, path, None).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, Failed> {
        self.call(Method::POST, path, Some(body)).await
    }

    // ----------------------------------------------- vapi/library.Manager

    /// `Manager.FindLibrary` (library.go): `{"spec": Find}`, `omitempty` fields.
    async fn find_library(&self, name: &str) -> Vec<String> {
        let spec = json!({"spec": {"name": name}});
        self.post("/com/vmware/content/library?~action=find", spec)
            .await
            .unwrap()
    }

    /// `Manager.GetLibraryByID`.
    async fn get_library_by_id(&self, id: &str) -> Result<Library, Failed> {
        self.get(&format!("/com/vmware/content/library/id:{id}"))
            .await
    }

    /// `Manager.GetLibraries` = `ListLibraries` + `GetLibraryByID` each.
    async fn get_libraries(&self) -> Vec<Library> {
        let ids: Vec<String> = self.get("/com/vmware/content/library").await.unwrap();
        let mut libraries = Vec::new();
        for id in ids {
            libraries.push(self.get_library_by_id(&id).await.unwrap());
        }
        libraries
    }

    /// `Manager.FindLibraryItems` (library_item.go): `{"spec": FindItem}`.
    async fn find_library_items(&self, library: &str, name: &str) -> Vec<String> {
        let spec = json!({"spec": {"library_id": library, "name": name}});
        self.post("/com/vmware/content/library/item?~action=find", spec)
            .await
            .unwrap()
    }

    /// `Manager.GetLibraryItem`.
    async fn get_library_item(&self, id: &str) -> Item {
        self.get(&format!("/com/vmware/content/library/item/id:{id}"))
            .await
            .unwrap()
    }

    /// `Manager.GetLibraryItems` = `ListLibraryItems` + `GetLibraryItem` each.
    async fn get_library_items(&self, library: &str) -> Vec<Item> {
        let ids: Vec<String> = self
            .get(&format!(
                "/com/vmware/content/library/item?library_id={library}"
            ))
            .await
            .unwrap();
        let mut items = Vec::new();
        for id in ids {
            items.push(self.get_library_item(&id).await);
        }
        items
    }

    /// `Manager.GetLibraryItemFile` (library_file.go).
    async fn get_library_item_file(&self, item: &str, name: &str) -> File {
        let path = format!("/com/vmware/content/library/item/file/id:{item}?~action=get");
        self.post(&path, json!({"name": name})).await.unwrap()
    }

    /// `Manager.ListLibraryItemFiles`.
    async fn list_library_item_files(&self, item: &str) -> Vec<File> {
        self.get(&format!(
            "/com/vmware/content/library/item/file?library_item_id={item}"
        ))
        .await
        .unwrap()
    }

    /// `Manager.GetLibraryItemStorage` (library_item_storage.go): a list.
    async fn get_library_item_storage(&self, item: &str, file: &str) -> Vec<Storage> {
        let path = format!("/com/vmware/content/library/item/storage/id:{item}?~action=get");
        self.post(&path, json!({"file_name": file})).await.unwrap()
    }

    // ------------------------------------------- vapi/library/finder.Finder

    /// `Finder.find`: leading `/` dropped, split on `/`, libraries, then items, then files.
    async fn find(&self, ipath: &str) -> Vec<Found> {
        let ipath = if ipath.is_empty() { "*" } else { ipath };
        let parts: Vec<&str> = ipath.trim_start_matches('/').split('/').collect();
        let libraries = self.find_libraries(parts[0]).await;
        if parts.len() < 2 {
            return libraries.into_iter().map(Found::Library).collect();
        }
        let items = self.find_items(&libraries, parts[1]).await;
        if parts.len() < 3 {
            return items
                .into_iter()
                .map(|(item, path)| Found::Item { item, path })
                .collect();
        }
        self.find_files(&items, parts[2]).await
    }

    /// `Finder.findLibraries`: a name by `FindLibrary` (then, finding none, the token
    /// as an id, its error ignored), a pattern by `GetLibraries` and `path.Match`.
    async fn find_libraries(&self, token: &str) -> Vec<Library> {
        let token = if token.is_empty() { "*" } else { token };
        if !token.contains(['*', '?']) {
            let mut found = Vec::new();
            for id in self.find_library(token).await {
                found.push(self.get_library_by_id(&id).await.unwrap());
            }
            if found.is_empty() {
                if let Ok(library) = self.get_library_by_id(token).await {
                    found.push(library);
                }
            }
            return found;
        }
        let all = self.get_libraries().await;
        all.into_iter()
            .filter(|l| path_match(token, &l.name))
            .collect()
    }

    /// `Finder.findLibraryItems`.
    async fn find_items(&self, libraries: &[Library], token: &str) -> Vec<(Item, String)> {
        let token = if token.is_empty() { "*" } else { token };
        let mut found = Vec::new();
        for library in libraries {
            let items = if !token.contains(['*', '?']) {
                let mut items = Vec::new();
                for id in self.find_library_items(&library.id, token).await {
                    items.push(self.get_library_item(&id).await);
                }
                items
            } else {
                let all = self.get_library_items(&library.id).await;
                all.into_iter()
                    .filter(|i| path_match(token, &i.name))
                    .collect()
            };
            for item in items {
                let path = format!("/{}/{}", library.name, item.name);
                found.push((item, path));
            }
        }
        found
    }

    /// `Finder.findLibraryItemFiles`.
    async fn find_files(&self, items: &[(Item, String)], token: &str) -> Vec<Found> {
        let token = if token.is_empty() { "*" } else { token };
        let mut found = Vec::new();
        for (item, path) in items {
            let files = if !token.contains(['*', '?']) {
                vec![self.get_library_item_file(&item.id, token).await]
            } else {
                let all = self.list_library_item_files(&item.id).await;
                all.into_iter()
                    .filter(|f| path_match(token, &f.name))
                    .collect()
            };
            for file in files {
                let path = format!("{path}/{}", file.name);
                found.push(Found::File {
                    file,
                    item_id: item.id.clone(),
                    path,
                });
            }
        }
        found
    }
}

/// Go's `path.Match` for the `*` and `?` govc paths use (no classes, no escapes).
fn path_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| !n[..i].contains(&'/') && go(rest, &n[i..])),
            Some(('?', rest)) => n.first().is_some_and(|c| *c != '/') && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    go(&p, &n)
}

/// `flags.ContentLibraryResult`: the path must name exactly one object.
fn one(mut found: Vec<Found>, ipath: &str) -> Found {
    assert_eq!(found.len(), 1, "{ipath:?} matches {} objects", found.len());
    found.pop().unwrap()
}

// -------------------------------------------------------------- fixtures

const ISO: &[u8] = b"photon installer bytes for the govc replays";
const OVF: &[u8] = b"<Envelope/>";

/// A library `isos` (created as govc's `library.create` sends it) with an item
/// `photon` (created as `library.import` does, content loaded with `import`) and a
/// second library `vms` with `vm` (two files).
async fn catalog(app: &TestApp) -> (String, String, Vec<u8>) {
    let admin = app.user("admin", LIBRARIAN).await;
    let rest = app.rest(&admin);
    let isos = rest.new_library("isos").await;
    let photon = rest.new_item(&isos, "photon", "iso").await;
    app.import("isos", "photon", &[("photon.iso", ISO)]).await;
    let disk: Vec<u8> = (0..250_000u32).map(|i| (i % 241) as u8).collect();
    app.import("vms", "vm", &[("vm.ovf", OVF), ("disk-0.vmdk", &disk)])
        .await;
    app.add_user("govc", "pw", DOWNLOADER).await;
    (isos, photon, disk)
}

// ------------------------------------------------------------ library.ls

/// `govc library.ls [PATH...]` (`cli/library/ls.go`): finder results, one path per line.
#[tokio::test]
async fn govc_library_ls() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let (_, photon, _) = catalog(&app).await;
    let govc = Govc::login(&app, "govc", "pw").await;
    let ls = |found: Vec<Found>| found.iter().map(Found::path).collect::<Vec<_>>();

    // No argument: `*`, i.e. GetLibraries.
    assert_eq!(ls(govc.find("").await), ["/isos", "/vms"]);
    // A name: FindLibrary + GetLibraryByID (names match without case).
    assert_eq!(ls(govc.find("/ISOS").await), ["/isos"]);
    // Items by pattern: GetLibraryItems + path.Match; by name: FindLibraryItems + GetLibraryItem.
    assert_eq!(ls(govc.find("/vms/*").await), ["/vms/vm"]);
    assert_eq!(ls(govc.find("/isos/photon").await), ["/isos/photon"]);
    assert_eq!(ls(govc.find("*/p*").await), ["/isos/photon"]);
    // Files: ListLibraryItemFiles for `item/`, GetLibraryItemFile for a name.
    assert_eq!(
        ls(govc.find("/vms/vm/").await),
        ["/vms/vm/disk-0.vmdk", "/vms/vm/vm.ovf"]
    );
    assert_eq!(ls(govc.find("/vms/vm/*.ovf").await), ["/vms/vm/vm.ovf"]);
    assert_eq!(
        ls(govc.find("/isos/photon/photon.iso").await),
        ["/isos/photon/photon.iso"]
    );
    // Nothing found by name: FindLibrary answers [], then the token is tried as an id
    // (NOT_FOUND, ignored), and ls prints nothing.
    assert!(govc.find("/nothing").await.is_empty());
    assert!(matches!(
        govc.get_library_by_id("nothing").await,
        Err(Failed(StatusCode::NOT_FOUND))
    ));
    assert!(govc.find("/isos/nothing").await.is_empty());
    // An id where a name is expected: found through GetLibraryByID.
    let libraries = govc.find_library("isos").await;
    assert_eq!(ls(govc.find(&libraries[0]).await), ["/isos"]);
    let found = one(govc.find("/isos/photon").await, "/isos/photon");
    let Found::Item { item, .. } = found else {
        panic!("an item")
    };
    assert_eq!(item.id, photon);
}

// ---------------------------------------------------------- library.info

/// `govc library.info [-s] PATH...` (`cli/library/info.go`). Before its first `/rest`
/// call after the login, govc also logs in on the vim25 SOAP endpoint (`cmd.Client()`),
/// which this service does not offer: the replay starts at the REST login and leaves
/// that SOAP login out.
#[tokio::test]
async fn govc_library_info() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.storage.content.direct_base = Some("nfs://nas.example.com/library/".into());
    })
    .await;
    let (isos, photon, _) = catalog(&app).await;
    // `-s` reads item storage: ContentLibrary.ReadStorage.
    let privileges = [DOWNLOADER, &["ContentLibrary.ReadStorage"]].concat();
    app.add_user("govc", "pw", &privileges).await;
    let govc = Govc::login(&app, "govc", "pw").await;

    // writeLibrary: every field it prints, the pointers it dereferences.
    let Found::Library(library) = one(govc.find("/isos").await, "/isos") else {
        panic!("a library")
    };
    assert_eq!(
        (library.id.as_str(), library.name.as_str()),
        (isos.as_str(), "isos")
    );
    assert_eq!(library.description.as_deref(), Some(""));
    assert_eq!(library.version, "1");
    let created = library
        .creation_time
        .expect("Created: CreationTime.Format(time.ANSIC)");
    assert!(created <= Utc::now());
    assert_eq!(library.library_type, "LOCAL");
    assert_eq!(library.storage.len(), 1);
    assert_eq!(
        (
            library.storage[0].datastore_id.as_str(),
            library.storage[0].backing_type.as_str()
        ),
        ("", "OTHER")
    );
    // `published := v.Publication != nil && *v.Publication.Published`
    let publication = library.publication.expect("publish_info");
    assert_eq!(publication.published, Some(false));
    assert!(
        library.subscription.is_none(),
        "*v.Subscription.AutomaticSyncEnabled would be read"
    );
    assert!(!library.server_guid.is_empty());

    // writeItem.
    let Found::Item { item, path } = one(govc.find("/isos/photon").await, "/isos/photon") else {
        panic!("an item")
    };
    assert_eq!(
        (item.id.as_str(), path.as_str()),
        (photon.as_str(), "/isos/photon")
    );
    assert_eq!(item.library_id, isos);
    assert_eq!(item.description.as_deref(), Some(""));
    assert_eq!(
        (item.item_type.as_str(), item.size, item.cached),
        ("iso", ISO.len() as i64, true)
    );
    let created = item.creation_time.expect("Created");
    let modified = item.last_modified_time.expect("Modified");
    assert!(created <= modified);
    assert_eq!(
        (item.version.as_str(), item.content_version.as_str()),
        ("1", "2")
    );

    // writeFile with -s: GetLibraryItemStorage of the file, each StorageURIs element.
    let Found::File {
        file,
        item_id,
        path,
    } = one(
        govc.find("/isos/photon/photon.iso").await,
        "/isos/photon/photon.iso",
    )
    else {
        panic!("a file")
    };
    assert_eq!(
        (file.name.as_str(), path.as_str()),
        ("photon.iso", "/isos/photon/photon.iso")
    );
    assert_eq!(
        (file.size, file.version.as_str()),
        (Some(ISO.len() as i64), "2")
    );
    let storage = govc.get_library_item_storage(&item_id, &file.name).await;
    assert_eq!(storage.len(), 1);
    assert_eq!(storage[0].name, "photon.iso");
    assert_eq!(
        storage[0].storage_uris,
        [format!(
            "nfs://nas.example.com/library/blobs/{}",
            sha256_hex(ISO)
        )]
    );
}

// -------------------------------------------------------- library.export

/// `govc library.export PATH [DEST]` (`cli/library/export.go`): the finder, then a
/// download session, its files, prepare each, poll each every second until PREPARED,
/// download each with the session header (`soap.Client.Download`: 200 only).
#[tokio::test]
async fn govc_library_export() {
    let app = spawn_app().await;
    let (_, _, disk) = catalog(&app).await;
    let govc = Govc::login(&app, "govc", "pw").await;

    // flags.ContentLibraryResult -> Finder: FindLibrary, GetLibraryByID,
    // FindLibraryItems, GetLibraryItem.
    let Found::Item { item, .. } = one(govc.find("vms/vm").await, "vms/vm") else {
        panic!("an item")
    };
    // Manager.CreateLibraryItemDownloadSession (library_item_downloadsession.go).
    let session: String = govc
        .post(
            "/com/vmware/content/library/item/download-session",
            json!({"create_spec": {"library_item_id": item.id}}),
        )
        .await
        .unwrap();
    // Manager.ListLibraryItemDownloadSessionFile.
    let files: Vec<DownloadFile> = govc
        .get(&format!(
            "/com/vmware/content/library/item/downloadsession/file?download_session_id={session}"
        ))
        .await
        .unwrap();
    let names: Vec<String> = files.into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["disk-0.vmdk", "vm.ovf"]);
    let file_path = format!("/com/vmware/content/library/item/downloadsession/file/id:{session}");
    // Manager.PrepareLibraryItemDownloadSessionFile: no endpoint_type.
    for name in &names {
        let _: DownloadFile = govc
            .post(
                &format!("{file_path}?~action=prepare"),
                json!({"file_name": name}),
            )
            .await
            .unwrap();
    }
    for name in &names {
        // Manager.GetLibraryItemDownloadSessionFile until PREPARED (govc sleeps 1 s).
        let deadline = Instant::now() + Duration::from_secs(30);
        let info = loop {
            let info: DownloadFile = govc
                .post(
                    &format!("{file_path}?~action=get"),
                    json!({"file_name": name}),
                )
                .await
                .unwrap();
            assert!(info.error_message.is_none(), "{name}: {info:?}");
            if info.status == "PREPARED" {
                break info;
            }
            assert!(Instant::now() < deadline, "{name} not PREPARED: {info:?}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        // rest.Client.DownloadFile -> soap.Client.Download: GET with the session header.
        let uri = info
            .download_endpoint
            .expect("a PREPARED file has an endpoint")
            .uri;
        let r = app
            .client
            .get(&uri)
            .header("vmware-api-session-id", &govc.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "download of {name}");
        let expected: &[u8] = if name == "vm.ovf" { OVF } else { &disk };
        assert_eq!(r.bytes().await.unwrap().as_ref(), expected, "{name}");
    }
}
