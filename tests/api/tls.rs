//! TLS termination: the service serves HTTPS itself, HTTPS endpoints carry the
//! certificate's SHA-1 thumbprint and PEM, and a client that pins exactly that
//! certificate downloads successfully. Behind a proxy, the advertised certificate does the same.

use std::{path::Path, process::Command, time::Duration};

use download_sessions::config::TlsSettings;
use serde_json::{json, Value};

use crate::helpers::*;

/// A self-signed certificate for 127.0.0.1 / localhost, made with openssl.
fn make_cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A server certificate, not a CA: rustls refuses a CA as end entity.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (cert, key)
}

/// What openssl says the SHA-1 fingerprint is (AA:BB:... upper case).
fn openssl_thumbprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().split_once('=').unwrap().1.to_uppercase()
}

fn pinned_client(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_endpoints_carry_the_certificate_and_a_pinning_client_downloads() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(certs.path());
    let app = spawn_app_with(|s| {
        s.http.tls = Some(TlsSettings {
            cert_file: cert.clone(),
            key_file: key.clone(),
        });
    })
    .await;
    let base = format!("https://127.0.0.1:{}", app.port);
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let item = app.import("lib", "item", &[("disk.vmdk", &bytes)]).await;
    app.add_user("tls-user", "pw", DOWNLOADER).await;

    let ours = std::fs::read_to_string(&cert).unwrap();
    let client = pinned_client(&ours);
    let anonymous = Api(Http::new(&client, &base));
    let token: String = anonymous
        .login("tls-user", "pw")
        .await
        .json()
        .await
        .unwrap();
    let api = Api(Http::new(&client, &base).with_token(&token));
    let spec = json!({ "library_item_id": item });
    let id: String = api.create_session(Some(spec)).await.json().await.unwrap();
    api.prepare(&id, Some(json!({ "file_name": "disk.vmdk" })))
        .await;
    let mut info = Value::Null;
    for _ in 0..100 {
        info = api.get_file(&id, "disk.vmdk").await.json().await.unwrap();
        if info["status"] == "PREPARED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(info["status"], "PREPARED", "{info}");
    let endpoint = &info["download_endpoint"];
    let uri = endpoint["uri"].as_str().unwrap();
    assert!(uri.starts_with(&format!("{base}/cls/data/")), "{uri}");
    let thumbprint = endpoint["ssl_certificate_thumbprint"].as_str().unwrap();
    assert_eq!(thumbprint, openssl_thumbprint(&cert));
    let pem = endpoint["ssl_certificate"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // A client that trusts only the advertised certificate downloads the file.
    let body = pinned_client(pem).get(uri).send().await.unwrap();
    assert_eq!(body.status(), 200);
    let got = body.bytes().await.unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&bytes));

    // A client that does not trust it is refused by TLS, and plain HTTP is not served.
    let other_certs = tempfile::tempdir().unwrap();
    let (other, _) = make_cert(other_certs.path());
    let stranger = pinned_client(&std::fs::read_to_string(other).unwrap());
    assert!(stranger.get(uri).send().await.is_err());
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", app.port)).await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));
}

#[tokio::test]
async fn behind_a_proxy_the_advertised_certificate_is_used() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, _) = make_cert(certs.path());
    let app = spawn_app_with(|s| {
        s.http.public_url = Some("https://downloads.example.com".parse().unwrap());
        s.http.advertised_certificate = Some(cert.clone());
    })
    .await;
    let item = app.import("lib", "item", &[("f.iso", b"iso")]).await;
    let token = app.user("proxy-user", DOWNLOADER).await;
    let id = app.api(&token).new_session(&item).await;
    let api = app.api(&token);
    api.prepare(&id, Some(json!({"file_name": "f.iso"}))).await;
    let mut info = Value::Null;
    for _ in 0..100 {
        info = api.get_file(&id, "f.iso").await.json().await.unwrap();
        if info["status"] == "PREPARED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let endpoint = &info["download_endpoint"];
    assert!(endpoint["uri"]
        .as_str()
        .unwrap()
        .starts_with("https://downloads.example.com/cls/data/"));
    assert_eq!(
        endpoint["ssl_certificate_thumbprint"],
        openssl_thumbprint(&cert).as_str()
    );
    assert!(endpoint["ssl_certificate"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
}

#[tokio::test]
async fn bad_tls_files_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let db = fresh_database().await;
    let mut s = test_settings(&db, dir.path());
    s.http.tls = Some(TlsSettings {
        cert_file: garbage.clone(),
        key_file: garbage,
    });
    let err = download_sessions::Application::build(s)
        .await
        .err()
        .expect("must fail");
    let text = format!("{err:#}");
    assert!(text.contains("garbage.pem"), "{text}");
}
