//! A multi-GiB file end to end: import, staging by the background workers,
//! a Range read past the 4 GiB offset and a full download with SHA-256 check.
//! Ignored by default (it writes ~14 GiB to disk); `benches/big.sh` runs it in release.

use std::{io::Write, time::Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

/// 4.5 GiB + 7 bytes: crosses 2^32, odd size.
const SIZE: u64 = (9 << 29) + 7;

/// Fast deterministic bytes (xorshift), so the file is not compressible or sparse.
fn fill(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

#[tokio::test]
#[ignore = "benchmark run: a 4.5 GiB file (benches/big.sh)"]
async fn a_multi_gib_file_is_staged_and_downloaded_intact() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.vmdk");
    let started = Instant::now();
    let mut expected = Sha256::new();
    let mut tail = Vec::new();
    {
        let mut out =
            std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(&path).unwrap());
        let mut buf = vec![0u8; 8 << 20];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut left = SIZE;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            fill(&mut buf[..n], &mut state);
            expected.update(&buf[..n]);
            out.write_all(&buf[..n]).unwrap();
            left -= n as u64;
            // The last 100 bytes of the file, whatever the size of the last write.
            tail.extend_from_slice(&buf[n.saturating_sub(100)..n]);
            let keep = tail.len().saturating_sub(100);
            tail.drain(..keep);
        }
        out.flush().unwrap();
    }
    let expected = hex::encode(expected.finalize());
    eprintln!("wrote {SIZE} bytes in {:?}", started.elapsed());

    let stores = download_sessions::storage::Buckets::from_settings(&app.settings).unwrap();
    let (item, _) = download_sessions::service::import::import_files(
        &app.db,
        &stores.content,
        "big",
        "big",
        None,
        &[path.as_path()],
    )
    .await
    .unwrap();
    drop(dir);
    let token = app.user("big", DOWNLOADER).await;
    let id = app.api(&token).new_session(&item.to_string()).await;
    let started = Instant::now();
    let r = app
        .api(&token)
        .prepare(&id, Some(json!({"file_name": "big.vmdk"})))
        .await;
    assert_eq!(r.status(), 200);
    let info = loop {
        let info: Value = app
            .api(&token)
            .get_file(&id, "big.vmdk")
            .await
            .json()
            .await
            .unwrap();
        if info["status"] == "PREPARED" || info["status"] == "ERROR" {
            break info;
        }
        assert!(
            started.elapsed().as_secs() < 600,
            "staging takes too long: {info}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(info["status"], "PREPARED", "{info}");
    assert_eq!(info["size"], SIZE);
    assert_eq!(info["checksum_info"]["checksum"], expected.as_str());
    let staged = started.elapsed();
    eprintln!(
        "staged in {staged:?} ({:.0} MB/s)",
        SIZE as f64 / staged.as_secs_f64() / 1e6
    );

    let uri = info["download_endpoint"]["uri"].as_str().unwrap();
    // The last 100 bytes, far past 2^32.
    let r = app
        .client
        .get(uri)
        .header("range", format!("bytes={}-", SIZE - 100))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes {}-{}/{SIZE}", SIZE - 100, SIZE - 1)
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), tail.as_slice());

    let started = Instant::now();
    let r = app.client.get(uri).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(SIZE));
    let mut got = Sha256::new();
    let mut n = 0u64;
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len() as u64;
        got.update(&chunk);
    }
    let took = started.elapsed();
    assert_eq!(n, SIZE);
    assert_eq!(hex::encode(got.finalize()), expected);
    eprintln!(
        "downloaded and hashed in {took:?} ({:.0} MB/s)",
        SIZE as f64 / took.as_secs_f64() / 1e6
    );
}
