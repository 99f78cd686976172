//! One instance as one caller sees it: a base URL, an HTTP client and, once logged in,
//! a login token sent in `vmware-api-session-id`. The surface clients build on this.

use reqwest::{RequestBuilder, Response};
use serde_json::Value;

#[derive(Clone, Copy)]
pub struct Http<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a str,
    pub token: Option<&'a str>,
}

impl<'a> Http<'a> {
    pub fn new(client: &'a reqwest::Client, base: &'a str) -> Http<'a> {
        Http {
            client,
            base,
            token: None,
        }
    }

    /// The same instance as the holder of `token`.
    pub fn with_token(self, token: &'a str) -> Http<'a> {
        Http {
            token: Some(token),
            ..self
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request to `path` carrying the token, to add to and send.
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let r = self.client.request(method, self.url(path));
        match self.token {
            Some(token) => r.header("vmware-api-session-id", token),
            None => r,
        }
    }

    pub async fn send(r: RequestBuilder) -> Response {
        r.send().await.expect("the instance answers")
    }

    pub async fn get(&self, path: &str) -> Response {
        Self::send(self.request(reqwest::Method::GET, path)).await
    }

    /// A POST with `body` as JSON, or with no body at all.
    pub async fn post(&self, path: &str, body: Option<Value>) -> Response {
        let mut r = self.request(reqwest::Method::POST, path);
        if let Some(body) = body {
            r = r.json(&body);
        }
        Self::send(r).await
    }

    /// A PATCH with `body` as JSON.
    pub async fn patch(&self, path: &str, body: Value) -> Response {
        Self::send(self.request(reqwest::Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        Self::send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// A POST with HTTP Basic credentials (the logins).
    pub async fn post_basic(&self, path: &str, user: &str, password: &str) -> Response {
        Self::send(
            self.request(reqwest::Method::POST, path)
                .basic_auth(user, Some(password)),
        )
        .await
    }
}

/// A query value as a form encoder writes it.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
