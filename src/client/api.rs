//! One logged-in conversation with a server's `/api` REST surface (vSphere
//! 7.0U2+): login, retried JSON calls, vAPI errors turned into [`Failure`]s.

use std::time::Duration;

use reqwest::{header::HeaderMap, Method, StatusCode};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use url::Url;

use super::{
    failure::{Failure, FailureKind, Result},
    tls::{format_thumbprint, is_certificate_error, Thumbprint, Trust, TrustMode},
};

/// How long one API call may take (downloads have no such limit).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// A data connection that receives nothing for this long is treated as cut.
const READ_STALL: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts of one API call through connection failures and 503s.
const CALL_ATTEMPTS: u32 = 4;

fn user_agent() -> String {
    format!("download-sessions/{}", env!("CARGO_PKG_VERSION"))
}

/// Where to log in and as whom.
pub struct Login {
    pub server: Url,
    pub user: String,
    pub password: String,
    pub trust: Trust,
}

/// Turns `--server` into a base URL: `https://` unless a scheme is given.
pub fn server_url(text: &str) -> Result<Url> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("https://{text}")
    };
    let mut url = Url::parse(&with_scheme)
        .map_err(|e| Failure::usage(format!("--server {text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Failure::usage(format!(
            "--server {text:?}: expected https://HOST[:PORT] (or http://)"
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

/// A failed call: the server could not be talked to, or it answered an error.
#[derive(Debug)]
pub enum CallError {
    Transport(reqwest::Error),
    Status {
        status: StatusCode,
        /// vAPI `error_type` (`NOT_FOUND`, ...) when the body had one.
        error_type: Option<String>,
        message: String,
    },
    /// A success answer whose body is not what the API documents.
    Decode(String),
}

impl CallError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            CallError::Transport(e) => !is_certificate_error(e),
            CallError::Status { status, .. } => *status == StatusCode::SERVICE_UNAVAILABLE,
            CallError::Decode(_) => false,
        }
    }
}

/// vAPI error body on `/api`: `{"error_type": .., "messages": [{"default_message": ..}]}`.
#[derive(Deserialize)]
struct ErrorBody {
    error_type: Option<String>,
    #[serde(default)]
    messages: Vec<Message>,
}

/// A LocalizableMessage.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Message {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub default_message: Option<String>,
}

impl Message {
    pub fn text(&self) -> String {
        self.default_message
            .clone()
            .or_else(|| self.id.clone())
            .unwrap_or_default()
    }
}

async fn status_error(response: reqwest::Response) -> CallError {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let (error_type, message) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(b) => {
            let texts: Vec<String> = b.messages.iter().map(Message::text).collect();
            (b.error_type, texts.join("; "))
        }
        Err(_) => (
            None,
            String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        ),
    };
    CallError::Status {
        status,
        error_type,
        message,
    }
}

/// The HTTP client every call and download of one command shares.
fn http_client(trust: &Trust, also: Option<Thumbprint>) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(trust.client_config(also)?)
        .user_agent(user_agent())
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_STALL)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Failure::other(format!("cannot set up the HTTP client: {e}")))
}

/// A logged-in API session.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: String,
    user: String,
    trust: Trust,
}

impl Api {
    /// Logs in with Basic authentication (`POST /api/session`).
    pub async fn login(login: Login) -> Result<Api> {
        let http = http_client(&login.trust, None)?;
        let mut api = Api {
            http,
            base: login.server,
            token: String::new(),
            user: login.user,
            trust: login.trust,
        };
        let password = login.password;
        let user = api.user.clone();
        let answer = api
            .send(Method::POST, "/api/session", None, |r| {
                r.basic_auth(&user, Some(&password))
            })
            .await;
        let token: String = match answer {
            Ok(r) => decode(r).await.map_err(|e| api.failure(e, "login"))?,
            Err(CallError::Status { status, .. }) if status == StatusCode::UNAUTHORIZED => {
                return Err(Failure::new(
                    FailureKind::Authentication,
                    format!(
                        "{} refused the login of {}: wrong user name or password \
                         (the password is the first line of standard input)",
                        api.base, api.user
                    ),
                ))
            }
            Err(CallError::Status { status, .. })
                if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED =>
            {
                return Err(Failure::not_found(format!(
                    "{} has no /api/session: it is not a vSphere 7.0 U2 (or later) API \
                     endpoint; check --server",
                    api.base
                )))
            }
            Err(e) => return Err(api.failure(e, "login")),
        };
        api.token = token;
        Ok(api)
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// A client for download URIs: same trust, plus the thumbprint the endpoint advertises.
    pub fn data_client(&self, advertised: Option<Thumbprint>) -> Result<reqwest::Client> {
        match advertised {
            None => Ok(self.http.clone()),
            Some(_) => http_client(&self.trust, advertised),
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}{}",
            self.base.as_str().trim_end_matches('/'),
            path_and_query
        )
    }

    /// One call, retried through connection failures and 503s (every call
    /// made here is idempotent, creates included: they carry a Client-Token).
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        extra: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> std::result::Result<reqwest::Response, CallError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), self.url(path_and_query))
                .timeout(CALL_TIMEOUT);
            if !self.token.is_empty() {
                req = req.header("vmware-api-session-id", &self.token);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let err = match extra(req).send().await {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) => status_error(r).await,
                Err(e) => CallError::Transport(e),
            };
            if attempt >= CALL_ATTEMPTS || !err.retryable() {
                return Err(err);
            }
            tokio::time::sleep(Duration::from_millis(250 << (attempt - 1))).await;
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> std::result::Result<T, CallError> {
        decode(self.send(Method::GET, path, None, |r| r).await?).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<T, CallError> {
        decode(self.send(Method::POST, path, Some(body), |r| r).await?).await
    }

    /// A POST whose answer has no body worth reading (void operations: 204).
    pub async fn post_void(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<(), CallError> {
        self.send(Method::POST, path, Some(body), |r| r).await?;
        Ok(())
    }

    /// A POST with extra headers (e.g. `Client-Token`).
    pub async fn post_with<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        headers: HeaderMap,
    ) -> std::result::Result<T, CallError> {
        decode(
            self.send(Method::POST, path, Some(body), |r| {
                r.headers(headers.clone())
            })
            .await?,
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> std::result::Result<(), CallError> {
        self.send(Method::DELETE, path, None, |r| r).await?;
        Ok(())
    }

    /// Ends the login (`DELETE /api/session`); failures only cost the server an idle token.
    pub async fn logout(&self) {
        let _ = self.delete("/api/session").await;
    }

    /// The usual reading of a failed call; `what` names the operation.
    pub fn failure(&self, e: CallError, what: &str) -> Failure {
        match e {
            CallError::Transport(e) => transport_failure(&self.base, &self.trust, &e, what),
            CallError::Status {
                status,
                error_type,
                message,
            } => {
                let kind = error_type.as_deref().unwrap_or("");
                let detail = if message.is_empty() {
                    format!("HTTP {status}")
                } else {
                    message
                };
                match status {
                    StatusCode::UNAUTHORIZED => Failure::new(
                        FailureKind::Authentication,
                        format!(
                            "{what}: the server no longer accepts this login ({detail}); \
                             run the command again to log in anew"
                        ),
                    ),
                    StatusCode::FORBIDDEN => Failure::new(
                        FailureKind::Authentication,
                        format!(
                            "{what}: user {} lacks a privilege for this ({detail}); \
                             ask an administrator to grant it",
                            self.user
                        ),
                    ),
                    StatusCode::NOT_FOUND => Failure::not_found(format!("{what}: {detail}")),
                    StatusCode::SERVICE_UNAVAILABLE => Failure::new(
                        FailureKind::Unreachable,
                        format!(
                            "{what}: {} is unavailable ({detail}); try again later",
                            self.base
                        ),
                    ),
                    _ if kind.is_empty() => {
                        Failure::other(format!("{what} failed: HTTP {status}: {detail}"))
                    }
                    _ => Failure::other(format!("{what} failed: {kind}: {detail}")),
                }
            }
            CallError::Decode(msg) => Failure::other(format!(
                "{what}: the server's answer is not what the vSphere API documents ({msg})"
            )),
        }
    }
}

/// A transport error read for the user: untrusted certificate or unreachable.
pub fn transport_failure(base: &Url, trust: &Trust, e: &reqwest::Error, what: &str) -> Failure {
    if is_certificate_error(e) {
        let seen = trust
            .last_seen()
            .map(|tp| format_thumbprint(&tp))
            .unwrap_or_else(|| "unknown".into());
        let hint = match trust.mode() {
            TrustMode::Thumbprint(_) => format!(
                "it does not match --thumbprint (the server's certificate has SHA-1 thumbprint {seen}); \
                 if the certificate was replaced on purpose, pass the new thumbprint"
            ),
            _ => format!(
                "its SHA-1 thumbprint is {seen}; if that is the server you expect, pass \
                 --thumbprint {seen}, or --ca-file with the CA that signed it"
            ),
        };
        return Failure::new(
            FailureKind::UntrustedCertificate,
            format!("{what}: the TLS certificate of {base} is not trusted: {hint}"),
        );
    }
    let cause = short_cause(e);
    let hint = if e.is_connect() {
        "check --server and that the service is running and reachable"
    } else {
        "the connection broke; run the command again (downloads resume where they stopped)"
    };
    Failure::new(
        FailureKind::Unreachable,
        format!("{what}: cannot talk to {base} ({cause}); {hint}"),
    )
}

/// What went wrong on the wire, in a few words: reqwest's outer layers
/// repeat the URL, the innermost cause says what happened.
pub fn short_cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(s) = cause.source() {
        cause = s;
    }
    cause.to_string()
}

async fn decode<T: DeserializeOwned>(r: reqwest::Response) -> std::result::Result<T, CallError> {
    let bytes = r.bytes().await.map_err(CallError::Transport)?;
    serde_json::from_slice(&bytes).map_err(|e| CallError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            server_url("vc.example.com").unwrap().as_str(),
            "https://vc.example.com/"
        );
        assert_eq!(
            server_url("http://127.0.0.1:8080/").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            server_url("https://h/prefix/?x=1").unwrap().as_str(),
            "https://h/prefix"
        );
        assert!(server_url("ftp://h").is_err());
        assert!(server_url("https://").is_err());
    }
}
