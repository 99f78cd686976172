//! HTTP/1.1 spoken by hand over one TCP connection, for what no well-behaved client
//! does: bodies sent a byte at a time, idle connections, odd methods, and watching
//! whether (and when) the server closes the connection.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpStream,
    },
    task::JoinHandle,
};

/// One connection to `127.0.0.1:port`.
pub struct Raw {
    read: OwnedReadHalf,
    write: Option<OwnedWriteHalf>,
    buffer: Vec<u8>,
    trickle: Option<JoinHandle<()>>,
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }

    /// Whether the server said it closes the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

impl Raw {
    pub async fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (read, write) = stream.into_split();
        Raw {
            read,
            write: Some(write),
            buffer: Vec::new(),
            trickle: None,
        }
    }

    /// Sends `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        let write = self.write.as_mut().expect("not trickling");
        write.write_all(bytes).await.unwrap();
    }

    /// Sends a request head (`\r\n`-terminated header lines, then the blank line).
    pub async fn head(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) {
        let mut text = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        self.send(text.as_bytes()).await;
    }

    /// A whole request with a body of its own.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let length = body.len().to_string();
        let mut all = headers.to_vec();
        all.push(("Content-Length", &length));
        self.head(method, path, &all).await;
        self.send(body).await;
    }

    /// From now on, sends `piece` every `every` in the background until the server
    /// closes the connection (a body that never ends).
    pub fn trickle(&mut self, piece: &'static [u8], every: Duration) {
        let mut write = self.write.take().expect("not trickling yet");
        self.trickle = Some(tokio::spawn(async move {
            loop {
                if write.write_all(piece).await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }));
    }

    /// The next response, or None when the server closes the connection (or says
    /// nothing) within `within`.
    pub async fn response(&mut self, within: Duration) -> Option<RawResponse> {
        tokio::time::timeout(within, self.read_response())
            .await
            .ok()
            .flatten()
    }

    async fn read_response(&mut self) -> Option<RawResponse> {
        let end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buffer[..end]).to_string();
        self.buffer.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.buffer.len() < length {
            if !self.fill().await {
                return None;
            }
        }
        let body = self.buffer.drain(..length).collect();
        Some(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.read.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Whether the server closes the connection within `within` (anything it sends
    /// meanwhile is discarded).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let closed = tokio::time::timeout(within, async {
            while self.fill().await {
                self.buffer.clear();
            }
        })
        .await
        .is_ok();
        if let Some(t) = self.trickle.take() {
            t.abort();
        }
        closed
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = self.trickle.take() {
            t.abort();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
