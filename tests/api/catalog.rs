//! Catalog reads on /api: libraries, items, item files, privileges.

use serde_json::Value;

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
