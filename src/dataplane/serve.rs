//! Serving prepared bytes at `GET`/`HEAD /cls/data/{token}/{file_name}`: token
//! check, per-request validity against the database, Range/If-Range, streaming.
//!
//! Any instance serves any URI: validity lives only in the database and is
//! checked (and the session lease renewed) on every request, so cancel, fail,
//! delete and expiry revoke a URI everywhere at once.

mod body;
pub mod budget;
mod range;

use std::time::{Duration, Instant};

use actix_web::{
    body::SizedStream,
    http::{
        header::{self, ContentEncoding, HeaderValue},
        Method, StatusCode,
    },
    web, HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::DataPlane;
use crate::{
    api::errors::{data_plane_response, ApiErrors, NotFound},
    domain::FileName,
    error::Error,
    store::dataplane::Servable,
};
use range::Selection;

/// Answers up to this size are read inline (see [`open_body`]).
const SMALL_INLINE: u64 = 64 << 10;
/// The data plane's route template, as metrics and the access log name it.
const ROUTE: &str = "/cls/data/{token}/{file_name}";

/// Registers the data-plane routes (outside `/api` and `/rest`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(ROUTE)
            .route(web::get().to(download))
            .route(web::head().to(download_head)),
    );
}

/// The path segments, fully percent-decoded (the URI builder encodes the file name).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct Target {
    /// Signed token of the endpoint.
    token: String,
    /// The file's name.
    #[param(example = "disk-0.vmdk")]
    file_name: String,
}

/// The bytes of a file (`GET /cls/data/...`), as the document describes them.
pub struct FileBytes;

impl utoipa::PartialSchema for FileBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type("application/octet-stream")
            .description(Some("The file's bytes (the requested range for 206)."))
            .into()
    }
}

impl utoipa::ToSchema for FileBytes {}

/// One answer for every refused URI, whatever the reason: a client must not
/// learn whether a token was forged, revoked, expired or names an unprepared file.
fn refused() -> Error {
    Error::not_found(
        "com.vmware.content.library.item.downloadsession.file.endpoint_not_found",
        "The download endpoint does not exist or is no longer valid.",
        &[],
    )
}

/// Download a prepared file
///
/// The `download_endpoint.uri` of a PREPARED file: no login, the signed token in the
/// path is the credential. Valid while the session is ACTIVE and its lease runs; each
/// request renews the lease. One `Range` (`bytes=a-b`, `a-`, `-n`) answers 206, an
/// unsatisfiable one 416; `If-Range` with the ETag or Last-Modified guards resumption.
#[utoipa::path(get, path = "/cls/data/{token}/{file_name}", operation_id = "DataDownload", tag = "data", security(),
    params(Target,
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1048575`.", example = "bytes=0-1023"),
        ("If-Range" = Option<String>, Header, description = "Honour Range only if the file still has this ETag or Last-Modified."),
    ),
    responses(
        (status = 200, description = "The whole file.", content((FileBytes = "application/octet-stream"), ("*/*")), headers(
            ("ETag" = String, description = "Quoted SHA-256 of the content."),
            ("Accept-Ranges" = String, description = "`bytes`."),
            ("Last-Modified" = String),
            ("Content-Disposition" = String, description = "`attachment` with the file name."),
        )),
        (status = 206, description = "The requested range.", content((FileBytes = "application/octet-stream"), ("*/*")), headers(
            ("Content-Range" = String, description = "`bytes a-b/size`."),
            ("ETag" = String, description = "Quoted SHA-256 of the content."),
        )),
        (status = 416, description = "The range lies outside the file.", headers(
            ("Content-Range" = String, description = "`bytes */size`."),
        )),
        ApiErrors<(NotFound,)>,
    )
)]
async fn download(req: HttpRequest, dataplane: web::Data<DataPlane>) -> HttpResponse {
    // Spares the access log a regex walk over every route to name this one.
    req.extensions_mut()
        .insert(crate::api::ops::RouteLabel(ROUTE));
    match serve(&req, &dataplane).await {
        Ok(response) => response,
        Err(e) => data_plane_response(e),
    }
}

/// Size and validators of a prepared file
///
/// The headers a GET would send, without the body (Range is ignored). Renews the lease.
#[utoipa::path(head, path = "/cls/data/{token}/{file_name}", operation_id = "DataHead", tag = "data", security(), params(Target),
    responses(
        (status = 200, description = "The file exists; `Content-Length` is its size.", headers(
            ("Content-Length" = i64),
            ("ETag" = String, description = "Quoted SHA-256 of the content."),
            ("Accept-Ranges" = String, description = "`bytes`."),
        )),
        (status = 404, description = "No such endpoint (HEAD answers carry no body)."),
        (status = 500, description = "Internal error (no body)."),
        (status = 503, description = "Database unreachable (no body)."),
    )
)]
async fn download_head(req: HttpRequest, dataplane: web::Data<DataPlane>) -> HttpResponse {
    download(req, dataplane).await
}

async fn serve(req: &HttpRequest, dataplane: &DataPlane) -> Result<HttpResponse, Error> {
    let target: Target = req.match_info().load().map_err(|_| refused())?;
    // No file we hand out has a name that is not a file name.
    let file = FileName::parse(&target.file_name).map_err(|_| refused())?;
    let session = dataplane.verify(&target.token, &file).ok_or_else(refused)?;
    let asked = Instant::now();
    let servable = dataplane.open(session, &file).await?.ok_or_else(refused)?;
    let size = u64::try_from(servable.size)
        .map_err(|_| Error::internal(anyhow::anyhow!("artifact has a negative size")))?;
    let etag = format!("\"{}\"", servable.sha256);

    // Range is defined for GET only; HEAD describes the full representation (RFC 9110 §14.2).
    let selection = if req.method() == Method::GET
        && range::if_range_allows(header_str(req, header::IF_RANGE), &etag, servable.staged_at)
    {
        match single_header(req, header::RANGE) {
            Ok(value) => range::select(value, size),
            // A repeated Range header is not a valid specifier: ignored.
            Err(()) => Selection::Full,
        }
    } else {
        Selection::Full
    };

    let mut response = representation_headers(
        match selection {
            Selection::Full => StatusCode::OK,
            Selection::Partial { .. } => StatusCode::PARTIAL_CONTENT,
            Selection::Unsatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        },
        file.as_str(),
        &etag,
        servable.staged_at,
    );
    match selection {
        Selection::Unsatisfiable => {
            response.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
            return Ok(response.finish());
        }
        Selection::Partial { start, end } => {
            response.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
        }
        Selection::Full => {}
    }
    let (offset, len) = selection.span(size);

    if req.method() == Method::HEAD {
        // The length is the one a GET would send; actix sends no body for HEAD.
        let none = futures_util::stream::empty::<std::io::Result<Bytes>>();
        return Ok(response.body(SizedStream::new(len, none)));
    }
    let bytes = open_body(dataplane, &servable, size, offset, len).await?;
    let keeper = body::Download {
        dataplane: dataplane.clone(),
        session,
        file,
        sha256: servable.sha256,
        valid_until: asked
            + Duration::try_from_secs_f64(servable.lease_remaining).unwrap_or_default(),
        expected: len,
    };
    Ok(response.body(SizedStream::new(len, body::Leased::new(bytes, keeper))))
}

/// The bytes `offset..offset + len` of the artifact: large direct reads when
/// the transfer store is a local directory, a ranged GET otherwise.
async fn open_body(
    dataplane: &DataPlane,
    servable: &Servable,
    size: u64,
    offset: u64,
    len: u64,
) -> Result<body::ByteStream, Error> {
    let transfer = dataplane.transfer();
    match transfer.local_path(&servable.transfer_key) {
        Some(path) => {
            let cannot_read = |e: std::io::Error| {
                Error::internal(anyhow::Error::new(e).context(format!(
                    "cannot read transfer artifact {}",
                    servable.transfer_key
                )))
            };
            // A small answer is read at once, on this thread: two hops to the
            // blocking pool and a read-ahead task cost more than the read (the
            // file is in the page cache unless the store is cold).
            if len <= SMALL_INLINE {
                let bytes = body::read_small(&path, size, offset, len).map_err(cannot_read)?;
                return Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed());
            }
            let file = body::open_local(path, size).await.map_err(cannot_read)?;
            Ok(body::local_file(
                file,
                offset,
                len,
                dataplane.read_ahead().clone(),
            ))
        }
        None => {
            body::object(
                transfer.inner.as_ref(),
                &servable.transfer_key,
                offset,
                len,
                size,
            )
            .await
        }
    }
}

/// Headers shared by 200, 206, 416 and HEAD answers.
fn representation_headers(
    status: StatusCode,
    file_name: &str,
    etag: &str,
    staged_at: DateTime<Utc>,
) -> HttpResponseBuilder {
    let mut r = HttpResponse::build(status);
    r.insert_header((header::ETAG, etag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header((
            header::LAST_MODIFIED,
            staged_at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ))
        .insert_header((header::CONTENT_TYPE, content_type(file_name)))
        // Stored bytes go out as they are: a compress middleware added later
        // must neither change the length nor break byte ranges.
        .insert_header(ContentEncoding::Identity)
        // Library content is served from the API's origin: never render it
        // in a browser (no sniffing, always a download).
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_DISPOSITION, content_disposition(file_name)));
    r
}

/// Media type from the file name; the virtual-machine formats get the types
/// VMware tools expect rather than mime_guess's VirtualBox ones.
fn content_type(file_name: &str) -> String {
    let ext = std::path::Path::new(file_name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let fixed = match ext.as_deref() {
        Some("vmdk" | "nvram" | "vmx" | "img") => Some("application/octet-stream"),
        Some("iso") => Some("application/x-iso9660-image"),
        // An OVA is a tar archive of an OVF package.
        Some("ova") => Some("application/x-tar"),
        Some("ovf") => Some("text/xml"),
        Some("mf" | "cert") => Some("text/plain"),
        _ => None,
    };
    match fixed {
        Some(t) => t.to_string(),
        None => mime_guess::from_path(file_name)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string(),
    }
}

/// `attachment` with the name as an ASCII fallback and in RFC 8187 form.
fn content_disposition(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(file_name.len() * 3);
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The value of a header that may appear at most once; Err when repeated or not text.
fn single_header(req: &HttpRequest, name: header::HeaderName) -> Result<Option<&str>, ()> {
    let mut values = req.headers().get_all(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(HeaderValue::to_str).transpose().map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type("disk-0.vmdk"), "application/octet-stream");
        assert_eq!(content_type("DISK.VMDK"), "application/octet-stream");
        assert_eq!(content_type("photon.iso"), "application/x-iso9660-image");
        assert_eq!(content_type("vm.ova"), "application/x-tar");
        assert_eq!(content_type("vm.ovf"), "text/xml");
        assert_eq!(content_type("notes.txt"), "text/plain");
        assert_eq!(content_type("no-extension"), "application/octet-stream");
    }

    #[test]
    fn disposition_escapes() {
        assert_eq!(
            content_disposition("my disk.vmdk"),
            "attachment; filename=\"my disk.vmdk\"; filename*=UTF-8''my%20disk.vmdk"
        );
        assert_eq!(
            content_disposition("a\"b\u{e9}.iso"),
            "attachment; filename=\"a_b_.iso\"; filename*=UTF-8''a%22b%C3%A9.iso"
        );
    }
}
