//! The catalog on /api: reads, find, libraries and items managed through the API, item
//! storage, privileges, deletion with revocation of download sessions (also across two
//! instances), collection of unreferenced content, and `import` into API libraries.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn libraries_items_and_files() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let item = app
        .import("isos", "ubuntu", &[("a.iso", b"aaaa"), ("b.txt", b"b")])
        .await;
    let token = app.user("reader", &["System.Read"]).await;

    let libs: Vec<String> = app.api(&token).list_libraries().await.json().await.unwrap();
    assert_eq!(libs.len(), 1);
    let lib: Value = app
        .api(&token)
        .get_library(&libs[0])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lib["name"], "isos");
    assert_eq!(lib["type"], "LOCAL");

    let items: Vec<String> = app
        .api(&token)
        .list_items(&libs[0])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(items, vec![item.clone()]);
    let it: Value = app.api(&token).get_item(&item).await.json().await.unwrap();
    assert_eq!(it["name"], "ubuntu");
    assert_eq!(it["library_id"], libs[0].as_str());
    assert_eq!(it["size"], 5);
    assert_eq!(it["content_version"], "1");
    assert_eq!(it["cached"], true);

    let files: Vec<Value> = app
        .api(&token)
        .item_files(&item)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "a.iso");
    assert_eq!(files[0]["size"], 4);
    assert_eq!(files[0]["checksum_info"]["algorithm"], "SHA256");
    assert_eq!(
        files[0]["checksum_info"]["checksum"],
        "61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4"
    );
    let one: Value = app
        .api(&token)
        .item_file(&item, "b.txt")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["size"], 1);
    let r = app.api(&token).item_file(&item, "zzz").await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;

    // Re-import: new content version, new size.
    app.import("isos", "ubuntu", &[("a.iso", b"aaaaaaaa")])
        .await;
    let it: Value = app.api(&token).get_item(&item).await.json().await.unwrap();
    assert_eq!(it["content_version"], "2");
    assert_eq!(it["size"], 8);
}

#[tokio::test]
async fn catalog_errors() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let token = app.user("reader", &["System.Read"]).await;
    let nobody = app.user("nobody", &[]).await;
    let missing = "6f3c2b7e-0000-4000-8000-000000000000";
    for path in [
        format!("/api/content/library/{missing}"),
        "/api/content/library/nope".to_string(),
        format!("/api/content/library/item/{missing}"),
        format!("/api/content/library/item/{missing}/file"),
        format!("/api/content/library/item?library_id={missing}"),
        "/api/content/library/item?library_id=nope".to_string(),
    ] {
        assert_api_error(app.get(&token, &path).await, 404, "NOT_FOUND").await;
    }
    let r = app.api(&token).get_library("item").await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = app.api(&nobody).list_libraries().await;
    assert_api_error(r, 403, "UNAUTHORIZED").await;
    let r = app.get(&token, "/api/content/library?x=1&x=2").await;
    assert_eq!(r.status(), 200);
}

// ------------------------------------------------- libraries, managed (/api)

#[tokio::test]
async fn local_libraries_are_created_read_updated_and_deleted() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let token = app.user("librarian", LIBRARIAN).await;
    let api = app.api(&token);

    let spec = json!({"name": "isos", "description": "Installer images", "type": "LOCAL",
        "storage_backings": [{"type": "DATASTORE", "datastore_id": "datastore-12"}]});
    let r = api.create_library(Some(spec), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: String = r.json().await.unwrap();
    let lib = api.library(&id).await;
    assert_eq!(lib["id"], id.as_str());
    assert_eq!(lib["name"], "isos");
    assert_eq!(lib["description"], "Installer images");
    assert_eq!(lib["type"], "LOCAL");
    assert_eq!(lib["version"], "1");
    assert!(lib["creation_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lib["creation_time"], lib["last_modified_time"]);
    // Whatever was asked, the bytes live in the content store (a local directory
    // here, which discloses no location).
    assert_eq!(lib["storage_backings"], json!([{"type": "OTHER"}]));
    assert_eq!(
        lib["publish_info"],
        json!({"authentication_method": "NONE", "published": false, "persist_json_enabled": false})
    );
    assert!(lib.get("subscription_info").is_none(), "{lib}");
    // The same library through /api/content/library.
    let same: Value = api.get_library(&id).await.json().await.unwrap();
    assert_eq!(same, lib);

    // server_guid: one for the whole service.
    let other = api.new_library("other").await;
    assert_eq!(api.library(&other).await["server_guid"], lib["server_guid"]);
    uuid::Uuid::parse_str(lib["server_guid"].as_str().unwrap()).unwrap();
    let ids: Vec<String> = api.list_local_libraries().await.json().await.unwrap();
    assert_eq!(ids, vec![id.clone(), other.clone()]);
    let ids: Vec<String> = api.list_libraries().await.json().await.unwrap();
    assert_eq!(ids, vec![id.clone(), other.clone()]);

    // Updates: the version grows with each change, not without one.
    let r = api
        .update_local_library(&id, json!({"description": "ISOs"}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let lib2 = api.library(&id).await;
    assert_eq!(lib2["version"], "2");
    assert_eq!(lib2["description"], "ISOs");
    assert!(lib2["last_modified_time"].as_str() > lib["last_modified_time"].as_str());
    let r = api
        .update_local_library(&id, json!({"description": "ISOs", "version": "2"}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.library(&id).await["version"], "2");
    let r = api
        .update_library(&id, json!({"name": "Isos", "version": "2"}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.library(&id).await["name"], "Isos");
    assert_eq!(api.library(&id).await["version"], "3");
    // A stale version: LocalLibrary.update CONCURRENT_CHANGE, Library.update INVALID_ARGUMENT.
    let r = api
        .update_local_library(&id, json!({"description": "x", "version": "2"}))
        .await;
    assert_api_error(r, 409, "CONCURRENT_CHANGE").await;
    let r = api
        .update_library(&id, json!({"description": "x", "version": "2"}))
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    // Names are unique without case, on create and on update.
    let r = api
        .create_library(Some(json!({"name": "ISOS"})), None)
        .await;
    let body = assert_api_error(r, 400, "ALREADY_EXISTS").await;
    assert_eq!(
        body["messages"][0]["id"],
        "com.vmware.content.library.duplicate_name"
    );
    let r = api
        .update_local_library(&other, json!({"name": "isos"}))
        .await;
    assert_api_error(r, 400, "ALREADY_EXISTS").await;
    assert_eq!(api.library(&other).await["version"], "1");

    // Client-Token: the same token from the same user answers the same library.
    let spec = json!({"name": "tokened"});
    let a: String = api
        .create_library(Some(spec.clone()), Some("tok-1"))
        .await
        .json()
        .await
        .unwrap();
    let r = api.create_library(Some(spec), Some("tok-1")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<String>().await.unwrap(), a);

    let r = api.delete_local_library(&other).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_api_error(api.get_local_library(&other).await, 404, "NOT_FOUND").await;
    assert_api_error(api.delete_local_library(&other).await, 404, "NOT_FOUND").await;
    let r = api
        .update_local_library(&other, json!({"description": "x"}))
        .await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    assert_api_error(api.delete_local_library("nope").await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn library_specs_are_checked() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let token = app.user("librarian", LIBRARIAN).await;
    let api = app.api(&token);
    for (spec, status, kind) in [
        (json!({}), 400, "INVALID_ARGUMENT"),
        (json!({"name": ""}), 400, "INVALID_ARGUMENT"),
        (json!({"name": "n".repeat(81)}), 400, "INVALID_ARGUMENT"),
        (
            json!({"name": "x", "description": "d".repeat(2001)}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"name": "x", "type": "SUBSCRIBED"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (json!({"name": "x", "bogus": 1}), 400, "INVALID_ARGUMENT"),
        (json!({"name": 7}), 400, "INVALID_ARGUMENT"),
        (
            json!({"name": "x", "storage_backings": [{"type": "OTHER"}, {"type": "OTHER"}]}),
            400,
            "UNSUPPORTED",
        ),
        (
            json!({"name": "x", "storage_backings": [{"type": "OTHER", "datastore_id": "d"}]}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"name": "x", "publish_info": {"published": true}}),
            400,
            "UNSUPPORTED",
        ),
        (
            json!({"name": "x", "security_policy_id": "p"}),
            400,
            "UNSUPPORTED",
        ),
        (
            json!({"name": "x", "subscription_info": {"on_demand": true}}),
            400,
            "INVALID_ARGUMENT",
        ),
    ] {
        let r = api.create_library(Some(spec.clone()), None).await;
        assert_eq!(r.status().as_u16(), status, "{spec}");
        assert_api_error(r, status, kind).await;
    }
    assert_api_error(
        api.create_library(None, None).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    // The fields vCenter fills in are accepted and ignored.
    let spec = json!({"name": "x", "id": "ignored", "version": "9", "server_guid": "g",
        "creation_time": "2020-01-01T00:00:00Z", "optimization_info": {"optimize_remote_publishing": false},
        "publish_info": {"published": false, "authentication_method": "NONE"},
        "unset_security_policy_id": false});
    let r = api.create_library(Some(spec), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: String = r.json().await.unwrap();
    assert_eq!(api.library(&id).await["version"], "1");

    // No subscribed libraries: an empty list, and the id of a local one is the wrong type.
    let r = api.list_subscribed_libraries().await;
    assert_eq!(r.json::<Vec<String>>().await.unwrap(), Vec::<String>::new());
    assert_api_error(
        api.get_subscribed_library(&id).await,
        400,
        "INVALID_ELEMENT_TYPE",
    )
    .await;
    let missing = uuid::Uuid::new_v4().to_string();
    assert_api_error(api.get_subscribed_library(&missing).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn find_matches_every_property_given() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let token = app.user("librarian", LIBRARIAN).await;
    let api = app.api(&token);
    let isos = api.new_library("ISOs").await;
    let vms = api.new_library("vms").await;
    let photon = api.new_item(&isos, "Photon", "iso").await;
    let ubuntu = api.new_item(&isos, "ubuntu", "ISO").await;
    let photon_vm = api.new_item(&vms, "photon", "ovf").await;
    let generic = api.new_item(&vms, "notes", "").await;

    assert_eq!(
        api.found_libraries(json!({"name": "isos"})).await,
        vec![isos.clone()]
    );
    assert_eq!(
        api.found_libraries(json!({"type": "LOCAL"})).await,
        vec![isos.clone(), vms.clone()]
    );
    assert!(api
        .found_libraries(json!({"type": "SUBSCRIBED"}))
        .await
        .is_empty());
    assert!(api
        .found_libraries(json!({"name": "nothing"}))
        .await
        .is_empty());
    for bad in [json!({}), json!({"type": "REMOTE"}), json!({"nom": "x"})] {
        assert_api_error(api.find_libraries(Some(bad)).await, 400, "INVALID_ARGUMENT").await;
    }
    assert_api_error(api.find_libraries(None).await, 400, "INVALID_ARGUMENT").await;

    assert_eq!(
        api.found_items(json!({"name": "PHOTON"})).await,
        vec![photon.clone(), photon_vm.clone()]
    );
    assert_eq!(
        api.found_items(json!({"name": "photon", "library_id": vms}))
            .await,
        vec![photon_vm.clone()]
    );
    assert_eq!(
        api.found_items(json!({"type": "iso"})).await,
        vec![photon.clone(), ubuntu.clone()]
    );
    assert_eq!(
        api.found_items(json!({"library_id": vms, "type": "file"}))
            .await,
        vec![generic.clone()]
    );
    assert_eq!(api.found_items(json!({"cached": true})).await.len(), 4);
    assert!(api.found_items(json!({"cached": false})).await.is_empty());
    assert!(api
        .found_items(json!({"source_id": photon}))
        .await
        .is_empty());
    assert!(api
        .found_items(json!({"library_id": "nope"}))
        .await
        .is_empty());
    assert!(api
        .found_items(json!({"name": "photon", "type": "vm-template"}))
        .await
        .is_empty());
    assert_api_error(
        api.find_items(Some(json!({}))).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    assert_api_error(api.find_items(None).await, 400, "INVALID_ARGUMENT").await;

    // Reading is all find needs.
    let reader = app.user("reader", &["System.Read"]).await;
    assert_eq!(
        app.api(&reader)
            .found_items(json!({"name": "ubuntu"}))
            .await,
        vec![ubuntu]
    );
    let nobody = app.user("nobody", &[]).await;
    let r = app
        .api(&nobody)
        .find_items(Some(json!({"name": "x"})))
        .await;
    assert_api_error(r, 403, "UNAUTHORIZED").await;
    let r = app.api(&nobody).find_libraries(Some(json!({}))).await;
    assert_api_error(r, 403, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn items_are_created_read_updated_and_deleted() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let token = app.user("librarian", LIBRARIAN).await;
    let api = app.api(&token);
    let lib = api.new_library("isos").await;
    let other = api.new_library("other").await;

    let spec =
        json!({"library_id": lib, "name": "photon", "description": "Photon OS", "type": "iso"});
    let r = api.create_item(Some(spec.clone()), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: String = r.json().await.unwrap();
    let item = api.item(&id).await;
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["library_id"], lib.as_str());
    assert_eq!(item["name"], "photon");
    assert_eq!(item["description"], "Photon OS");
    assert_eq!(item["type"], "iso");
    assert_eq!(item["size"], 0);
    assert_eq!(item["cached"], true);
    for field in ["version", "metadata_version", "content_version"] {
        assert_eq!(item[field], "1", "{field}");
    }
    assert!(item["creation_time"].as_str().unwrap().ends_with('Z'));
    assert!(item["last_modified_time"].is_string());
    assert!(item.get("last_sync_time").is_none() && item.get("source_id").is_none());
    let ids: Vec<String> = api.list_items(&lib).await.json().await.unwrap();
    assert_eq!(ids, vec![id.clone()]);

    // Names are unique in a library without case; vCenter's own error.
    let dup = json!({"library_id": lib, "name": "PHOTON"});
    let body = assert_api_error(
        api.create_item(Some(dup), None).await,
        400,
        "ALREADY_EXISTS",
    )
    .await;
    let m = &body["messages"][0];
    assert_eq!(
        m["id"],
        "com.vmware.vdcs.cls-main.duplicate_item_name_unsupported_in_library"
    );
    assert_eq!(m["args"], json!(["PHOTON", "isos", lib]));
    // The same name in another library is fine; no type is the generic `file`.
    let elsewhere = api.new_item(&other, "photon", "").await;
    assert_eq!(api.item(&elsewhere).await["type"], "file");

    // Client-Token: the same token from the same user answers the same item.
    let spec = json!({"library_id": lib, "name": "tokened"});
    let a: String = api
        .create_item(Some(spec.clone()), Some("t-1"))
        .await
        .json()
        .await
        .unwrap();
    let b: String = api
        .create_item(Some(spec), Some("t-1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);

    for (spec, status, kind) in [
        (json!({"name": "x"}), 400, "INVALID_ARGUMENT"),
        (json!({"library_id": lib}), 400, "INVALID_ARGUMENT"),
        (
            json!({"library_id": lib, "name": "n".repeat(81)}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"library_id": lib, "name": "x", "type": " iso"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            json!({"library_id": lib, "name": "x", "size": "big"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (json!({"library_id": "nope", "name": "x"}), 404, "NOT_FOUND"),
        (
            json!({"library_id": uuid::Uuid::new_v4(), "name": "x"}),
            404,
            "NOT_FOUND",
        ),
    ] {
        assert_api_error(api.create_item(Some(spec), None).await, status, kind).await;
    }
    assert_api_error(api.create_item(None, None).await, 400, "INVALID_ARGUMENT").await;

    // Updates: version and metadata_version grow with each change.
    let r = api
        .update_item(
            &id,
            json!({"name": "photon-5", "description": "", "version": "1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let item2 = api.item(&id).await;
    assert_eq!(
        (item2["name"].as_str(), item2["description"].as_str()),
        (Some("photon-5"), Some(""))
    );
    assert_eq!(
        (
            item2["version"].as_str(),
            item2["metadata_version"].as_str()
        ),
        (Some("2"), Some("2"))
    );
    assert_eq!(item2["content_version"], "1");
    assert_eq!(item2["type"], "iso", "an unset type is unchanged");
    let r = api.update_item(&id, json!({"type": ""})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.item(&id).await["version"], "2", "nothing changed");
    let r = api.update_item(&id, json!({"type": "ovf"})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.item(&id).await["type"], "ovf");
    let r = api
        .update_item(&id, json!({"name": "x", "version": "1"}))
        .await;
    assert_api_error(r, 400, "INVALID_ARGUMENT").await;
    let r = api.update_item(&id, json!({"name": "Tokened"})).await;
    assert_api_error(r, 400, "ALREADY_EXISTS").await;
    assert_api_error(
        api.update_item(&elsewhere, json!({"name": ""})).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;

    assert_eq!(api.delete_item(&id).await.status(), StatusCode::NO_CONTENT);
    assert_api_error(api.get_item(&id).await, 404, "NOT_FOUND").await;
    assert_api_error(api.delete_item(&id).await, 404, "NOT_FOUND").await;
    assert_api_error(
        api.update_item(&id, json!({"name": "y"})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let ids: Vec<String> = api.list_items(&lib).await.json().await.unwrap();
    assert_eq!(ids, vec![a]);
}

#[tokio::test]
async fn each_operation_needs_its_privilege() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let admin = app.user("admin", LIBRARIAN).await;
    let lib = app.api(&admin).new_library("lib").await;
    let item = app.import("lib", "vm", &[("disk.vmdk", b"disk")]).await;
    let reader = app
        .user("reader", &["System.Read", "ContentLibrary.DownloadSession"])
        .await;
    let api = app.api(&reader);
    let library_spec = json!({"name": "new"});
    let item_spec = json!({"library_id": lib, "name": "new"});
    let checks: Vec<(&str, reqwest::Response)> = vec![
        (
            "ContentLibrary.CreateLocalLibrary",
            api.create_library(Some(library_spec.clone()), None).await,
        ),
        (
            "ContentLibrary.UpdateLocalLibrary",
            api.update_local_library(&lib, json!({"name": "x"})).await,
        ),
        (
            "ContentLibrary.UpdateLibrary",
            api.update_library(&lib, json!({"name": "x"})).await,
        ),
        (
            "ContentLibrary.DeleteLocalLibrary",
            api.delete_local_library(&lib).await,
        ),
        (
            "ContentLibrary.AddLibraryItem",
            api.create_item(Some(item_spec.clone()), None).await,
        ),
        (
            "ContentLibrary.UpdateLibraryItem",
            api.update_item(&item, json!({"name": "x"})).await,
        ),
        (
            "ContentLibrary.DeleteLibraryItem",
            api.delete_item(&item).await,
        ),
        ("ContentLibrary.ReadStorage", api.item_storage(&item).await),
        (
            "ContentLibrary.ReadStorage",
            api.item_storage_of(&item, "disk.vmdk").await,
        ),
    ];
    for (privilege, r) in checks {
        let body = assert_api_error(r, 403, "UNAUTHORIZED").await;
        assert_eq!(body["messages"][0]["args"][1], privilege, "{body}");
    }
    // Each privilege alone is enough for its operation.
    for (privilege, expected) in [
        ("ContentLibrary.CreateLocalLibrary", StatusCode::CREATED),
        ("ContentLibrary.AddLibraryItem", StatusCode::CREATED),
        ("ContentLibrary.ReadStorage", StatusCode::OK),
        ("ContentLibrary.UpdateLibraryItem", StatusCode::NO_CONTENT),
        ("ContentLibrary.UpdateLibrary", StatusCode::NO_CONTENT),
        ("ContentLibrary.UpdateLocalLibrary", StatusCode::NO_CONTENT),
        ("ContentLibrary.DeleteLibraryItem", StatusCode::NO_CONTENT),
        ("ContentLibrary.DeleteLocalLibrary", StatusCode::NO_CONTENT),
    ] {
        let user = app.user(&privilege.replace('.', "-"), &[privilege]).await;
        let api = app.api(&user);
        let r = match privilege {
            "ContentLibrary.CreateLocalLibrary" => {
                api.create_library(Some(library_spec.clone()), None).await
            }
            "ContentLibrary.AddLibraryItem" => api.create_item(Some(item_spec.clone()), None).await,
            "ContentLibrary.ReadStorage" => api.item_storage(&item).await,
            "ContentLibrary.UpdateLibraryItem" => {
                api.update_item(&item, json!({"description": "d"})).await
            }
            "ContentLibrary.UpdateLibrary" => {
                api.update_library(&lib, json!({"description": "a"})).await
            }
            "ContentLibrary.UpdateLocalLibrary" => {
                api.update_local_library(&lib, json!({"description": "b"}))
                    .await
            }
            "ContentLibrary.DeleteLibraryItem" => api.delete_item(&item).await,
            _ => api.delete_local_library(&lib).await,
        };
        assert_eq!(r.status(), expected, "{privilege}");
    }
}

// ------------------------------------------------------------- item storage

#[tokio::test]
async fn item_storage_never_discloses_a_server_path() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let item = app
        .import(
            "lib",
            "vm",
            &[("disk-0.vmdk", b"disk bytes"), ("vm.ovf", b"<Envelope/>")],
        )
        .await;
    let token = app.user("storage", &["ContentLibrary.ReadStorage"]).await;
    let r = app.api(&token).item_storage(&item).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let data_dir = app.data_dir.display().to_string();
    assert!(
        !text.contains(&data_dir) && !text.contains("file:"),
        "{text}"
    );
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(all.len(), 2);
    let disk = &all[0];
    assert_eq!(disk["name"], "disk-0.vmdk");
    assert_eq!(disk["size"], 10);
    assert_eq!(disk["cached"], true);
    assert_eq!(disk["version"], "1");
    assert_eq!(disk["storage_backing"], json!({"type": "OTHER"}));
    assert_eq!(disk["storage_uris"], json!([]));
    assert_eq!(disk["checksum_info"]["algorithm"], "SHA256");
    assert_eq!(disk["checksum_info"]["checksum"], sha256_hex(b"disk bytes"));

    // get answers a list too.
    let r = app.api(&token).item_storage_of(&item, "vm.ovf").await;
    let one: Vec<Value> = r.json().await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["name"], "vm.ovf");
    for missing in ["nope", "a/b"] {
        let r = app.api(&token).item_storage_of(&item, missing).await;
        assert_api_error(r, 404, "NOT_FOUND").await;
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_api_error(
        app.api(&token).item_storage(&unknown).await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn item_storage_uris_extend_the_configured_base() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.storage.content.direct_base = Some("file:///mnt/library".into());
    })
    .await;
    let item = app.import("lib", "iso", &[("photon.iso", b"iso")]).await;
    let token = app
        .user("storage", &["System.Read", "ContentLibrary.ReadStorage"])
        .await;
    let all: Vec<Value> = app
        .api(&token)
        .item_storage(&item)
        .await
        .json()
        .await
        .unwrap();
    let sha = sha256_hex(b"iso");
    assert_eq!(
        all[0]["storage_uris"],
        json!([format!("file:///mnt/library/blobs/{sha}")])
    );
    assert_eq!(
        all[0]["storage_backing"],
        json!({"type": "OTHER", "storage_uri": "file:///mnt/library/"})
    );
    let libs: Vec<String> = app.api(&token).list_libraries().await.json().await.unwrap();
    let lib: Value = app
        .api(&token)
        .get_library(&libs[0])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        lib["storage_backings"],
        json!([{"type": "OTHER", "storage_uri": "file:///mnt/library/"}])
    );
}

// --------------------------------------------- deletion, revocation, content

/// A prepared file of `item` for a fresh downloader: (token, session, URI).
async fn prepared(app: &TestApp, user: &str, item: &str, name: &str) -> (String, String, String) {
    let token = app.user(user, DOWNLOADER).await;
    let api = app.api(&token);
    let session = api.new_session(item).await;
    api.prepare_file(&session, name).await;
    let info = api
        .wait_prepared(&session, name, Duration::from_secs(30))
        .await;
    let uri = info["download_endpoint"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    (token, session, uri)
}

#[tokio::test]
async fn deleting_an_item_revokes_its_download_sessions() {
    let app = spawn_app().await;
    let item = app
        .import("lib", "vm", &[("disk.vmdk", b"disk of vm")])
        .await;
    let (token, session, uri) = prepared(&app, "dl", &item, "disk.vmdk").await;
    assert_eq!(
        app.client.get(&uri).send().await.unwrap().status(),
        StatusCode::OK
    );

    let admin = app.user("admin", LIBRARIAN).await;
    assert_eq!(
        app.api(&admin).delete_item(&item).await.status(),
        StatusCode::NO_CONTENT
    );
    let r = app.client.get(&uri).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The session stays to say why, in ERROR; so do its files.
    let api = app.api(&token);
    let model = api.session(&session).await;
    assert_eq!(model["state"], "ERROR");
    assert_eq!(model["library_item_id"], item.as_str());
    assert_eq!(
        model["error_message"]["id"],
        "com.vmware.content.library.item.download_session.item_deleted"
    );
    assert!(model["error_message"]["default_message"]
        .as_str()
        .unwrap()
        .contains(&item));
    let file = api.file_info(&session, "disk.vmdk").await;
    assert_eq!(file["status"], "ERROR", "{file}");
    assert!(file.get("download_endpoint").is_none());
    assert_eq!(
        file["error_message"]["id"],
        "com.vmware.content.library.item.downloadsession.file.item_deleted"
    );
    // It cannot be prepared again, and new sessions of the item are NOT_FOUND.
    let r = api
        .prepare(&session, Some(json!({"file_name": "disk.vmdk"})))
        .await;
    assert_api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE").await;
    let r = api
        .create_session(Some(json!({"library_item_id": item})))
        .await;
    assert_api_error(r, 404, "NOT_FOUND").await;
    assert_api_error(api.list_sessions_of(&item).await, 404, "NOT_FOUND").await;
    assert_eq!(api.session_ids().await, vec![session.clone()]);
    assert_eq!(
        api.delete_session(&session).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn deleting_a_library_deletes_its_items_and_revokes_their_sessions() {
    let app = spawn_app().await;
    let a = app.import("doomed", "a", &[("a.bin", b"aaa")]).await;
    let b = app.import("doomed", "b", &[("b.bin", b"bbb")]).await;
    let kept = app.import("kept", "c", &[("c.bin", b"ccc")]).await;
    let (token, session_a, uri_a) = prepared(&app, "dl", &a, "a.bin").await;
    let api = app.api(&token);
    let session_b = api.new_session(&b).await;
    let session_c = api.new_session(&kept).await;

    let admin = app.user("admin", LIBRARIAN).await;
    let libs = app
        .api(&admin)
        .found_libraries(json!({"name": "doomed"}))
        .await;
    let r = app.api(&admin).delete_local_library(&libs[0]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for item in [&a, &b] {
        assert_api_error(app.api(&admin).get_item(item).await, 404, "NOT_FOUND").await;
    }
    assert_eq!(
        app.client.get(&uri_a).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    for session in [&session_a, &session_b] {
        assert_eq!(api.session(session).await["state"], "ERROR");
    }
    assert_eq!(api.session(&session_c).await["state"], "ACTIVE");
    assert_eq!(app.api(&admin).item(&kept).await["name"], "c");
}

fn content_blob(app: &TestApp, bytes: &[u8]) -> std::path::PathBuf {
    app.data_dir.join("content/blobs").join(sha256_hex(bytes))
}

#[tokio::test]
async fn content_is_collected_once_no_item_references_it() {
    let app = spawn_app_with(|s| {
        s.workers.count = 0;
        s.maintenance.content_grace_seconds = 0;
    })
    .await;
    let shared: &[u8] = b"bytes two items share";
    let own: &[u8] = b"bytes of item a only";
    let a = app
        .import("lib", "a", &[("shared.bin", shared), ("own.bin", own)])
        .await;
    let b = app.import("lib", "b", &[("copy.bin", shared)]).await;
    let stores = download_sessions::storage::Buckets::from_settings(&app.settings).unwrap();
    let pass = || download_sessions::worker::maintenance_pass(&app.db, &stores, &app.settings);
    assert_eq!(
        pass().await.unwrap().content_deleted,
        0,
        "everything is referenced"
    );

    let admin = app.user("admin", LIBRARIAN).await;
    app.api(&admin).delete_item(&a).await;
    assert_eq!(pass().await.unwrap().content_deleted, 1);
    assert!(!content_blob(&app, own).exists());
    assert!(
        content_blob(&app, shared).exists(),
        "item b still has these bytes"
    );

    app.api(&admin).delete_item(&b).await;
    assert_eq!(pass().await.unwrap().content_deleted, 1);
    assert!(!content_blob(&app, shared).exists());

    // The same bytes imported again are stored again.
    let c = app.import("lib", "c", &[("shared.bin", shared)]).await;
    assert!(content_blob(&app, shared).exists());
    assert_eq!(pass().await.unwrap().content_deleted, 0);
    let files: Vec<Value> = app.api(&admin).item_files(&c).await.json().await.unwrap();
    assert_eq!(files[0]["size"], shared.len());
}

// ----------------------------------------------------------------- import

#[tokio::test]
async fn import_types_and_libraries_created_through_the_api() {
    let app = spawn_app_with(|s| s.workers.count = 0).await;
    let admin = app.user("admin", LIBRARIAN).await;
    let api = app.api(&admin);
    let lib = api.new_library("Golden").await;
    let created = api.new_item(&lib, "Photon", "").await;

    // `import` finds both by name without case: a new content version of that item.
    let same = app
        .import("golden", "photon", &[("photon.iso", b"iso bytes")])
        .await;
    assert_eq!(same, created);
    let item = api.item(&created).await;
    assert_eq!(item["content_version"], "2");
    assert_eq!(item["size"], 9);
    assert_eq!(item["type"], "file", "an existing item keeps its type");
    assert_eq!(item["version"], "1");
    let ids: Vec<String> = api.list_libraries().await.json().await.unwrap();
    assert_eq!(ids, vec![lib.clone()]);

    // New items get the type guessed from their files, or the one given.
    let iso = app
        .import("golden", "ubuntu", &[("ubuntu.ISO", b"u")])
        .await;
    assert_eq!(api.item(&iso).await["type"], "iso");
    let ovf = app
        .import(
            "golden",
            "vm",
            &[("vm.ovf", b"<E/>"), ("disk-0.vmdk", b"d")],
        )
        .await;
    assert_eq!(api.item(&ovf).await["type"], "ovf");
    let ova = app
        .import("golden", "appliance", &[("app.ova", b"tar")])
        .await;
    assert_eq!(api.item(&ova).await["type"], "file");
    let given = app
        .import_as("golden", "tmpl", Some("vm-template"), &[("t.bin", b"t")])
        .await;
    assert_eq!(api.item(&given).await["type"], "vm-template");
    // Given for an existing item, the type changes (a property change: version grows).
    app.import_as(
        "golden",
        "photon",
        Some("iso"),
        &[("photon.iso", b"iso bytes 2")],
    )
    .await;
    let item = api.item(&created).await;
    assert_eq!(
        (item["type"].as_str(), item["version"].as_str()),
        (Some("iso"), Some("2"))
    );
    assert_eq!(item["content_version"], "3");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bin");
    std::fs::write(&path, b"x").unwrap();
    let stores = download_sessions::storage::Buckets::from_settings(&app.settings).unwrap();
    for (library, item, item_type) in [
        ("", "i", None),
        ("l", &*"n".repeat(81), None),
        ("l", "i", Some(" x")),
    ] {
        let r = download_sessions::service::import::import_files(
            &app.db,
            &stores.content,
            library,
            item,
            item_type,
            &[path.as_path()],
        )
        .await;
        assert!(r.is_err(), "{library:?} {item:?} {item_type:?}");
    }
}

// --------------------------------------------------------- two instances

#[tokio::test]
async fn an_item_deleted_through_one_instance_stops_downloads_through_another() {
    let a = spawn_app().await;
    let b = spawn_instance(&a.db_url, &a.data_dir, |_| {}).await;
    let disk: Vec<u8> = (0..200_000u32).map(|i| (i % 239) as u8).collect();
    let item = a.import("lib", "vm", &[("disk.vmdk", &disk)]).await;
    let (_token, _session, uri) = prepared(&b, "dl", &item, "disk.vmdk").await;
    // The URI names instance B; it serves, then stops once A deletes the item.
    assert!(uri.starts_with(&b.address), "{uri}");
    let got = b
        .client
        .get(&uri)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), disk.as_slice());

    let admin = a.user("admin", LIBRARIAN).await;
    let deleted = Instant::now();
    assert_eq!(
        a.api(&admin).delete_item(&item).await.status(),
        StatusCode::NO_CONTENT
    );
    loop {
        let r = b
            .client
            .get(&uri)
            .header("Range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            deleted.elapsed() < Duration::from_secs(1),
            "instance B still serves {} after the delete",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "refused through B {:?} after the delete through A",
        deleted.elapsed()
    );
}
