//! How the HTTP surfaces answer an error: the `/api` body, the `/rest` envelope and the
//! data plane's, each rendered here once, and the error responses the OpenAPI document declares.
//!
//! A route's surface is app data on its scope ([`Surface`]), so extractors refuse a request
//! in the shape of the surface it came to; handlers return [`ApiError`] or [`RestError`].
//! Operations document their errors as `ApiErrors<(NotFound, ...)>` (500 and 503 are implied):
//! one reusable response per status and surface, with an example rendered by the same code.

use std::{collections::BTreeMap, fmt, marker::PhantomData};

use actix_web::{
    http::{header, StatusCode},
    HttpRequest, HttpResponse, ResponseError,
};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::{
    openapi::{
        schema::{ObjectBuilder, Schema, Type},
        ContentBuilder, Ref, RefOr, Response, ResponseBuilder,
    },
    IntoResponses, PartialSchema, ToSchema,
};

use super::extract::{parse_json, unknown_action};
use crate::{
    domain::{Caller, ItemId, Privilege, SessionId},
    error::{Error, ErrorKind, LocalizableMessage},
};

// ------------------------------------------------------------------ bodies

/// `/api` error body: `{"error_type": KIND, "messages": [...]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiErrorBody {
    pub error_type: ErrorKind,
    pub messages: Vec<LocalizableMessage>,
}

impl From<&Error> for ApiErrorBody {
    fn from(e: &Error) -> Self {
        ApiErrorBody {
            error_type: e.kind,
            messages: e.messages.clone(),
        }
    }
}

/// `/rest` error body: `{"type": "com.vmware.vapi.std.errors.<kind>", "value": {"error_type", "messages"}}`.
#[derive(Serialize, ToSchema)]
pub struct RestErrorBody {
    #[serde(rename = "type")]
    pub vapi_type: VapiErrorType,
    pub value: ApiErrorBody,
}

impl From<&Error> for RestErrorBody {
    fn from(e: &Error) -> Self {
        RestErrorBody {
            vapi_type: VapiErrorType(e.kind),
            value: ApiErrorBody::from(e),
        }
    }
}

/// The `type` of a `/rest` error body: [`ErrorKind::vapi_type`] on the wire and in the
/// schema alike, so the two cannot drift.
#[derive(Clone, Copy, Debug)]
pub struct VapiErrorType(pub ErrorKind);

impl Serialize for VapiErrorType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.vapi_type())
    }
}

impl PartialSchema for VapiErrorType {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ErrorKind::ALL.map(ErrorKind::vapi_type)))
            .description(Some(
                "`com.vmware.vapi.std.errors.*`: the `type` of a `/rest` error body.",
            ))
            .into()
    }
}

impl ToSchema for VapiErrorType {}

// --------------------------------------------------------------- surfaces

/// The surface a route belongs to: set as app data on its scope (the application's
/// default is `/api`). Extractors read it to refuse a request in the right shape and
/// to know how the action parameter is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Api,
    Rest,
}

impl Surface {
    pub fn of(req: &HttpRequest) -> Surface {
        req.app_data::<Surface>().copied().unwrap_or(Surface::Api)
    }

    /// The error as this surface answers it.
    pub fn reject(self, e: Error) -> actix_web::Error {
        match self {
            Surface::Api => ApiError::from(e).into(),
            Surface::Rest => RestError::from(e).into(),
        }
    }

    /// `action` on `/api`, `~action` on `/rest`.
    pub fn action_param(self) -> &'static str {
        match self {
            Surface::Api => "action",
            Surface::Rest => "~action",
        }
    }
}

/// How one surface writes an error (the body type), and which surface it is.
pub trait Shape: 'static {
    const SURFACE: Surface;
    type Body: Serialize + ToSchema + for<'a> From<&'a Error>;
}

/// The `/api` shape (also the data plane's and the fallback for unknown routes).
pub struct Api;
/// The `/rest` shape.
pub struct Rest;

/// A core error on its way out through surface `S`: handlers return it, `?` makes it.
pub struct Failure<S>(pub Error, PhantomData<S>);

pub type ApiError = Failure<Api>;
pub type RestError = Failure<Rest>;

impl<S> From<Error> for Failure<S> {
    fn from(e: Error) -> Self {
        Failure(e, PhantomData)
    }
}

impl<S> fmt::Debug for Failure<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<S> fmt::Display for Failure<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<S: Shape> ResponseError for Failure<S> {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.0.retry_after_secs() {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        response.json(S::Body::from(&self.0))
    }
}

/// A path (or method) no operation answers to.
pub fn no_route(req: &HttpRequest) -> Error {
    let path = req.path().to_string();
    Error::not_found(
        "com.vmware.vapi.rest.not_found",
        format!("No operation at {} {path}.", req.method()),
        &[&path],
    )
}

/// The data plane answers in the `/api` shape, never cached.
pub fn data_plane_response(e: Error) -> HttpResponse {
    let mut response = ApiError::from(e).error_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

// ---------------------------------------------------------- documentation

/// The error statuses the documentation distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    BadRequest,
    Unauthenticated,
    Unauthorized,
    NotFound,
    Conflict,
    PayloadTooLarge,
    RequestTimeout,
    InternalServerError,
    ServiceUnavailable,
}

impl Status {
    fn code(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::Unauthenticated => 401,
            Status::Unauthorized => 403,
            Status::NotFound => 404,
            Status::Conflict => 409,
            Status::PayloadTooLarge => 413,
            Status::RequestTimeout => 408,
            Status::InternalServerError => 500,
            Status::ServiceUnavailable => 503,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Status::BadRequest => "BadRequest",
            Status::Unauthenticated => "Unauthenticated",
            Status::Unauthorized => "Unauthorized",
            Status::NotFound => "NotFound",
            Status::Conflict => "Conflict",
            Status::PayloadTooLarge => "PayloadTooLarge",
            Status::RequestTimeout => "RequestTimeout",
            Status::InternalServerError => "InternalServerError",
            Status::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// `ApiNotFound`, `RestNotFound`.
    fn response_name<S: Shape>(self) -> String {
        let prefix = match S::SURFACE {
            Surface::Api => "Api",
            Surface::Rest => "Rest",
        };
        format!("{prefix}{}", self.name())
    }
}

/// An error status an operation documents; `ApiErrors<(Unauthenticated, NotFound)>`.
pub trait Documents {
    const STATUS: Status;
}

macro_rules! statuses {
    ($($name:ident),*) => {
        $(
            #[doc = concat!("Documents the `", stringify!($name), "` error response.")]
            pub struct $name;
            impl Documents for $name {
                const STATUS: Status = Status::$name;
            }
        )*
    };
}

statuses!(
    BadRequest,
    Unauthenticated,
    Unauthorized,
    NotFound,
    Conflict,
    PayloadTooLarge
);

/// A list of documented statuses (a tuple of markers).
pub trait Statuses {
    fn list() -> Vec<Status>;
}

macro_rules! status_tuples {
    ($(($($T:ident),+))*) => {
        $(
            impl<$($T: Documents),+> Statuses for ($($T,)+) {
                fn list() -> Vec<Status> {
                    vec![$($T::STATUS),+]
                }
            }
        )*
    };
}

status_tuples!((A)(A, B)(A, B, C)(A, B, C, D)(A, B, C, D, E)(
    A, B, C, D, E, F
));

/// The error responses of one operation on surface `S`: the statuses `L` lists, plus
/// 500 and 503, which any operation can answer, and 408 beside 413: an operation
/// that reads a body can get it too slowly as well as too large.
pub struct Errors<S, L>(PhantomData<(S, L)>);

pub type ApiErrors<L> = Errors<Api, L>;
pub type RestErrors<L> = Errors<Rest, L>;

impl<S: Shape, L: Statuses> IntoResponses for Errors<S, L> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let listed = L::list();
        let slow = listed
            .contains(&Status::PayloadTooLarge)
            .then_some(Status::RequestTimeout);
        listed
            .into_iter()
            .chain(slow)
            .chain([Status::InternalServerError, Status::ServiceUnavailable])
            .map(|s| {
                let reference = Ref::from_response_name(s.response_name::<S>());
                (s.code().to_string(), reference.into())
            })
            .collect()
    }
}

/// `Retry-After` of every 503 answer.
fn retry_after_header() -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before trying again."))
        .build()
}

/// The reusable response components of surface `S`, one per status.
pub fn response_components<S: Shape>() -> Vec<(String, RefOr<Response>)> {
    Status::ALL
        .into_iter()
        .map(|status| {
            let description = status.description(S::SURFACE);
            let example = serde_json::to_value(S::Body::from(&status.example::<S>()))
                .expect("an error body serializes");
            let mut response = ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(S::Body::name())))
                    .example(Some(example))
                    .build(),
            );
            if status == Status::ServiceUnavailable {
                response = response.header("Retry-After", retry_after_header());
            }
            (status.response_name::<S>(), response.build().into())
        })
        .collect()
}

impl Status {
    const ALL: [Status; 9] = [
        Status::BadRequest,
        Status::Unauthenticated,
        Status::Unauthorized,
        Status::NotFound,
        Status::Conflict,
        Status::PayloadTooLarge,
        Status::RequestTimeout,
        Status::InternalServerError,
        Status::ServiceUnavailable,
    ];

    /// What it means on `surface` (`/rest` spells kinds in lower case).
    fn description(self, surface: Surface) -> String {
        let text = match self {
            Status::BadRequest => "`{INVALID_ARGUMENT}` (malformed body or parameter, unknown {action}, no such file, a stale `version`), `{NOT_ALLOWED_IN_CURRENT_STATE}`, `{ALREADY_EXISTS}` (a name taken), `{INVALID_ELEMENT_TYPE}` or `{UNSUPPORTED}`.",
            Status::Unauthenticated => "`{UNAUTHENTICATED}`: no valid login token (or wrong user name or password on login).",
            Status::Unauthorized => "`{UNAUTHORIZED}`: the user lacks the privilege the operation needs.",
            Status::NotFound => "`{NOT_FOUND}`: the object does not exist, is not the caller's, or its id is not even well-formed.",
            Status::Conflict => "`{CONCURRENT_CHANGE}`: the object changed since the `version` the request was based on.",
            Status::PayloadTooLarge => "The request body is larger than `http.max_body_bytes` (kind `{INVALID_ARGUMENT}`).",
            Status::RequestTimeout => "The request body did not arrive within `http.body_timeout_seconds` of the request head (kind `{INVALID_ARGUMENT}`); the connection closes.",
            Status::InternalServerError => "`{INTERNAL_SERVER_ERROR}`: never carries internals; the service log has the cause.",
            Status::ServiceUnavailable => "`{SERVICE_UNAVAILABLE}`: the database cannot be reached, the instance has too many open connections, or (logins) too many logins are being checked or this user failed too often from this address; try again after `Retry-After` seconds.",
        };
        let (action, spell): (_, fn(&str) -> String) = match surface {
            Surface::Api => ("action", str::to_string),
            Surface::Rest => ("`~action`", str::to_ascii_lowercase),
        };
        let mut text = text.replace("{action}", action);
        for kind in ErrorKind::ALL.map(ErrorKind::as_str) {
            text = text.replace(&format!("{{{kind}}}"), &spell(kind));
        }
        text
    }

    /// An error of this status as surface `S` shows it, made by the code that makes it.
    fn example<S: Shape>(self) -> Error {
        const ID: &str = "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0";
        let cause = || anyhow::anyhow!("an example");
        let rest = S::SURFACE == Surface::Rest;
        match self {
            Status::BadRequest if rest => unknown_action("~action", Some("nope")),
            Status::BadRequest => parse_json::<serde_json::Value>(b"x").unwrap_err(),
            Status::Unauthenticated => Error::unauthenticated(),
            Status::Unauthorized => {
                let alice = Caller {
                    user_id: uuid::Uuid::nil(),
                    name: "alice".into(),
                    privileges: Default::default(),
                };
                let lacking = if rest {
                    Privilege::Read
                } else {
                    Privilege::DownloadSession
                };
                alice.require(lacking).unwrap_err()
            }
            Status::NotFound if rest => ItemId::not_found(ID),
            Status::NotFound => SessionId::not_found(ID),
            Status::Conflict => Error::new(
                ErrorKind::ConcurrentChange,
                "com.vmware.content.library.concurrent_change",
                format!("Library {ID} is at version 3, not 2: it changed meanwhile."),
                &["2", "3"],
            ),
            Status::PayloadTooLarge => Error::payload_too_large(65536),
            Status::RequestTimeout => Error::body_too_slow("within 10 seconds"),
            Status::InternalServerError => Error::internal(cause()),
            Status::ServiceUnavailable => Error::unavailable(cause()),
        }
    }
}

impl Shape for Api {
    const SURFACE: Surface = Surface::Api;
    type Body = ApiErrorBody;
}

impl Shape for Rest {
    const SURFACE: Surface = Surface::Rest;
    type Body = RestErrorBody;
}
