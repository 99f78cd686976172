//! Cross-site request forgery: when a login token arrives in the session cookie
//! (which a browser attaches by itself), the request must not be one a page on
//! another site could have made.
//!
//! The cookie is `SameSite=Strict`, so browsers do not attach it to cross-site
//! requests at all; this is the second line, for browsers that ignore `SameSite`
//! and for sibling subdomains (same site, other origin). vSphere clients send JSON
//! or no body, and most send the token in the header, which no cross-site request
//! can set; a request that does is not affected.

use actix_web::{http::header::CONTENT_TYPE, HttpRequest};

use crate::error::{Error, ErrorKind, Result};

/// Body types an HTML form (or a `no-cors` fetch) can send cross-site without a preflight.
const FORM_TYPES: [&str; 3] = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
];

/// Whether a token from the session cookie may authenticate `req`: refused
/// (UNAUTHENTICATED, saying why) when its body has a type a cross-site form can
/// send, or when the browser says it comes from another site (`Sec-Fetch-Site`).
pub fn cookie_may_authenticate(req: &HttpRequest) -> Result<()> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if let Some(content_type) = header(CONTENT_TYPE.as_str()) {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if FORM_TYPES.contains(&essence) {
            return Err(refused(&format!(
                "with Content-Type {essence} (a type cross-site forms can send); send the \
                 body as application/json, or the token in the vmware-api-session-id header"
            )));
        }
    }
    if let Some(site) = header("sec-fetch-site") {
        if site == "cross-site" || site == "same-site" {
            return Err(refused(&format!(
                "from a page of another origin (Sec-Fetch-Site: {site}); send the token in \
                 the vmware-api-session-id header"
            )));
        }
    }
    Ok(())
}

fn refused(why: &str) -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "com.vmware.vapi.rest.cookie_authentication_refused",
        format!("The session cookie does not authenticate a request {why}."),
        &[why],
    )
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn allowed(headers: &[(&str, &str)]) -> bool {
        let mut r = TestRequest::post();
        for (k, v) in headers {
            r = r.insert_header((*k, *v));
        }
        cookie_may_authenticate(&r.to_http_request()).is_ok()
    }

    #[test]
    fn form_types_and_other_sites_are_refused() {
        assert!(allowed(&[]));
        assert!(allowed(&[("content-type", "application/json")]));
        assert!(allowed(&[(
            "content-type",
            "application/json; charset=utf-8"
        )]));
        assert!(allowed(&[("sec-fetch-site", "same-origin")]));
        assert!(allowed(&[("sec-fetch-site", "none")]));
        assert!(!allowed(&[("content-type", "text/plain")]));
        assert!(!allowed(&[("content-type", "Text/Plain; charset=UTF-8")]));
        assert!(!allowed(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )]));
        assert!(!allowed(&[(
            "content-type",
            "multipart/form-data; boundary=x"
        )]));
        assert!(!allowed(&[("sec-fetch-site", "cross-site")]));
        assert!(!allowed(&[("sec-fetch-site", "same-site")]));
    }
}
