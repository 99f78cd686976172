//! Receiving PUSH uploads at `PUT`/`POST /cls/upload/{token}/{file_name}`: the
//! `upload_endpoint.uri` of an update session's file. The signed token is the
//! credential; the core streams, hashes, verifies and stores the bytes.

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    api::errors::{data_plane_response, ApiErrors, BadRequest, NotFound},
    edge::body::TooSlow,
    error::Error,
    service::Service,
};

/// Registers the upload routes (outside `/api` and `/rest`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cls/upload/{token}/{file_name}")
            .route(web::put().to(upload))
            .route(web::post().to(upload_post)),
    );
}

/// The path segments, fully percent-decoded.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UploadTarget {
    /// Signed token of the endpoint.
    token: String,
    /// The file's name.
    #[param(example = "photon.iso")]
    file_name: String,
}

/// The bytes of a file being uploaded, as the document describes them.
pub struct UploadBytes;

impl utoipa::PartialSchema for UploadBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("The file's bytes, whole (any Content-Type)."))
            .into()
    }
}

impl utoipa::ToSchema for UploadBytes {}

/// Upload a file of an update session
///
/// The `upload_endpoint.uri` of a PUSH file: no login, the signed token in the path is
/// the credential. Valid while the session is ACTIVE and its lease runs. The whole file
/// in one request, any `Content-Type`; it is hashed on the way and becomes `READY` only
/// when its size and SHA256 match what `add` declared. More bytes than declared or
/// another checksum: 400 and the file in `ERROR`. Sending the file again starts over.
#[utoipa::path(put, path = "/cls/upload/{token}/{file_name}", operation_id = "DataUpload", tag = "data", security(),
    params(UploadTarget),
    request_body(content = UploadBytes, content_type = "application/octet-stream"),
    responses((status = 200, description = "Received, verified and stored: the file is READY."),
        ApiErrors<(BadRequest, NotFound)>))]
async fn upload(req: HttpRequest, service: Service, body: web::Payload) -> HttpResponse {
    match receive(&req, &service, body).await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(e) => data_plane_response(e),
    }
}

/// Upload a file of an update session (POST)
///
/// The same as `PUT` (VMware's SDK samples POST).
#[utoipa::path(post, path = "/cls/upload/{token}/{file_name}", operation_id = "DataUploadPost", tag = "data", security(),
    params(UploadTarget),
    request_body(content = UploadBytes, content_type = "application/octet-stream"),
    responses((status = 200, description = "Received, verified and stored: the file is READY."),
        ApiErrors<(BadRequest, NotFound)>))]
async fn upload_post(req: HttpRequest, service: Service, body: web::Payload) -> HttpResponse {
    upload(req, service, body).await
}

async fn receive(req: &HttpRequest, service: &Service, body: web::Payload) -> Result<(), Error> {
    let target: UploadTarget = req
        .match_info()
        .load()
        .map_err(|_| crate::service::upload_refused())?;
    let body = body.map(|chunk| {
        chunk.map_err(|e| match TooSlow::of(&e) {
            Some(rule) => Error::body_too_slow(&rule.describe()),
            None => Error::invalid_argument(
                "com.vmware.vapi.rest.bad_request_body",
                format!("The request body could not be read: {e}"),
                &[],
            ),
        })
    });
    service
        .receive_upload(&target.token, &target.file_name, Box::pin(body))
        .await
}
