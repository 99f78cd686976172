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

use crate::error::{Error, ErrorKind, LocalizableMessage};

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

/// How one surface writes an error, and what its documentation says about each status.
pub trait Shape: 'static {
    /// Prefix of its response components (`ApiNotFound`, `RestNotFound`).
    const PREFIX: &'static str;
    /// Its column in [`DOCUMENTED`].
    const COLUMN: usize;
    /// Its action parameter as descriptions name it.
    const ACTION: &'static str;
    type Body: Serialize + ToSchema + for<'a> From<&'a Error>;
    /// An error kind as its descriptions spell it (`NOT_FOUND`, `not_found`).
    fn spell(kind: ErrorKind) -> String;
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
        HttpResponse::build(self.status_code()).json(S::Body::from(&self.0))
    }
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
    PayloadTooLarge,
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
            Status::PayloadTooLarge => 413,
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
            Status::PayloadTooLarge => "PayloadTooLarge",
            Status::InternalServerError => "InternalServerError",
            Status::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    fn response_name<S: Shape>(self) -> String {
        format!("{}{}", S::PREFIX, self.name())
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

status_tuples!((A)(A, B)(A, B, C)(A, B, C, D)(A, B, C, D, E));

/// The error responses of one operation on surface `S`: the statuses `L` lists, plus
/// 500 and 503, which any operation can answer.
pub struct Errors<S, L>(PhantomData<(S, L)>);

pub type ApiErrors<L> = Errors<Api, L>;
pub type RestErrors<L> = Errors<Rest, L>;

impl<S: Shape, L: Statuses> IntoResponses for Errors<S, L> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        L::list()
            .into_iter()
            .chain([Status::InternalServerError, Status::ServiceUnavailable])
            .map(|s| {
                let reference = Ref::from_response_name(s.response_name::<S>());
                (s.code().to_string(), reference.into())
            })
            .collect()
    }
}

/// The reusable response components of surface `S`, one per status.
pub fn response_components<S: Shape>() -> Vec<(String, RefOr<Response>)> {
    DOCUMENTED
        .into_iter()
        .map(|(status, template, kind, examples)| {
            let mut description = template.replace("{action}", S::ACTION);
            for k in ErrorKind::ALL {
                description = description.replace(&format!("{{{}}}", k.as_str()), &S::spell(k));
            }
            let (id, message) = examples[S::COLUMN];
            let error = Error::new(kind, id, message, &[]);
            let example =
                serde_json::to_value(S::Body::from(&error)).expect("an error body serializes");
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(S::Body::name())))
                        .example(Some(example))
                        .build(),
                )
                .build();
            (status.response_name::<S>(), response.into())
        })
        .collect()
}

impl Shape for Api {
    const PREFIX: &'static str = "Api";
    const COLUMN: usize = 0;
    const ACTION: &'static str = "action";
    type Body = ApiErrorBody;

    fn spell(kind: ErrorKind) -> String {
        kind.as_str().to_string()
    }
}

impl Shape for Rest {
    const PREFIX: &'static str = "Rest";
    const COLUMN: usize = 1;
    const ACTION: &'static str = "`~action`";
    type Body = RestErrorBody;

    fn spell(kind: ErrorKind) -> String {
        kind.as_str().to_ascii_lowercase()
    }
}

/// A status, its description, the kind of its example and the example's message id and
/// text on each surface.
type Documented = (
    Status,
    &'static str,
    ErrorKind,
    [(&'static str, &'static str); 2],
);

/// What the documentation says about each status, for both surfaces: the description
/// (`{KIND}` is spelled as the surface spells kinds, `{action}` is its action parameter)
/// and the example error, `[/api, /rest]`.
const DOCUMENTED: [Documented; 7] = [
    (
        Status::BadRequest,
        "`{INVALID_ARGUMENT}` (malformed body or parameter, unknown {action}, no such file), `{NOT_ALLOWED_IN_CURRENT_STATE}` or `{ALREADY_EXISTS}`.",
        ErrorKind::InvalidArgument,
        [
            ("com.vmware.vapi.rest.json_parse_error", "The request body is not valid: expected value at line 1 column 1"),
            ("com.vmware.vapi.rest.unknown_action", "Unknown or missing ~action \"nope\"."),
        ],
    ),
    (
        Status::Unauthenticated,
        "`{UNAUTHENTICATED}`: no valid login token (or wrong user name or password on login).",
        ErrorKind::Unauthenticated,
        [("com.vmware.vapi.endpoint.method.authentication.required", "This method requires authentication."); 2],
    ),
    (
        Status::Unauthorized,
        "`{UNAUTHORIZED}`: the user lacks the privilege the operation needs.",
        ErrorKind::Unauthorized,
        [
            ("com.vmware.vapi.std.errors.unauthorized", "User alice does not have the privilege ContentLibrary.DownloadSession required by this operation."),
            ("com.vmware.vapi.std.errors.unauthorized", "User alice does not have the privilege System.Read required by this operation."),
        ],
    ),
    (
        Status::NotFound,
        "`{NOT_FOUND}`: the object does not exist, is not the caller's, or its id is not even well-formed.",
        ErrorKind::NotFound,
        [
            ("com.vmware.content.library.item.download_session.not_found", "Download session 0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0 does not exist."),
            ("com.vmware.content.library.item.not_found", "Library item 0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0 does not exist."),
        ],
    ),
    (
        Status::PayloadTooLarge,
        "The request body is larger than `http.max_body_bytes` (kind `{INVALID_ARGUMENT}`).",
        ErrorKind::InvalidArgument,
        [("com.vmware.vapi.rest.payload_too_large", "The request body is larger than 65536 bytes."); 2],
    ),
    (
        Status::InternalServerError,
        "`{INTERNAL_SERVER_ERROR}`: never carries internals; the service log has the cause.",
        ErrorKind::InternalServerError,
        [("com.vmware.vapi.std.errors.internal_server_error", "Internal server error; see the service log."); 2],
    ),
    (
        Status::ServiceUnavailable,
        "`{SERVICE_UNAVAILABLE}`: the database cannot be reached; try again.",
        ErrorKind::ServiceUnavailable,
        [("com.vmware.vapi.std.errors.service_unavailable", "The service is temporarily unavailable; try again."); 2],
    ),
];
