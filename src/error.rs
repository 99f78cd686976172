//! The one error type of the service core and its vAPI error kinds. Each wire
//! surface renders it in its own shape (`api::errors`); internals are logged, never sent.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// vAPI standard error kinds used by the download-session contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    InvalidArgument,
    NotAllowedInCurrentState,
    AlreadyExists,
    InvalidElementType,
    Unsupported,
    Unauthenticated,
    Unauthorized,
    NotFound,
    ConcurrentChange,
    ResourceBusy,
    InternalServerError,
    ServiceUnavailable,
}

impl ErrorKind {
    /// Every kind, in declaration order (the `/rest` error `type` enum is built from it).
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotAllowedInCurrentState,
        ErrorKind::AlreadyExists,
        ErrorKind::InvalidElementType,
        ErrorKind::Unsupported,
        ErrorKind::Unauthenticated,
        ErrorKind::Unauthorized,
        ErrorKind::NotFound,
        ErrorKind::ConcurrentChange,
        ErrorKind::ResourceBusy,
        ErrorKind::InternalServerError,
        ErrorKind::ServiceUnavailable,
    ];

    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument
            | ErrorKind::NotAllowedInCurrentState
            | ErrorKind::AlreadyExists
            | ErrorKind::InvalidElementType
            | ErrorKind::Unsupported
            | ErrorKind::ResourceBusy => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Unauthorized => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::ConcurrentChange => 409,
            ErrorKind::InternalServerError => 500,
            ErrorKind::ServiceUnavailable => 503,
        }
    }

    /// `NOT_FOUND` etc.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::NotAllowedInCurrentState => "NOT_ALLOWED_IN_CURRENT_STATE",
            ErrorKind::AlreadyExists => "ALREADY_EXISTS",
            ErrorKind::InvalidElementType => "INVALID_ELEMENT_TYPE",
            ErrorKind::Unsupported => "UNSUPPORTED",
            ErrorKind::Unauthenticated => "UNAUTHENTICATED",
            ErrorKind::Unauthorized => "UNAUTHORIZED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::ConcurrentChange => "CONCURRENT_CHANGE",
            ErrorKind::ResourceBusy => "RESOURCE_BUSY",
            ErrorKind::InternalServerError => "INTERNAL_SERVER_ERROR",
            ErrorKind::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// `com.vmware.vapi.std.errors.not_found` etc.
    pub fn vapi_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "com.vmware.vapi.std.errors.invalid_argument",
            ErrorKind::NotAllowedInCurrentState => {
                "com.vmware.vapi.std.errors.not_allowed_in_current_state"
            }
            ErrorKind::AlreadyExists => "com.vmware.vapi.std.errors.already_exists",
            ErrorKind::InvalidElementType => "com.vmware.vapi.std.errors.invalid_element_type",
            ErrorKind::Unsupported => "com.vmware.vapi.std.errors.unsupported",
            ErrorKind::Unauthenticated => "com.vmware.vapi.std.errors.unauthenticated",
            ErrorKind::Unauthorized => "com.vmware.vapi.std.errors.unauthorized",
            ErrorKind::NotFound => "com.vmware.vapi.std.errors.not_found",
            ErrorKind::ConcurrentChange => "com.vmware.vapi.std.errors.concurrent_change",
            ErrorKind::ResourceBusy => "com.vmware.vapi.std.errors.resource_busy",
            ErrorKind::InternalServerError => "com.vmware.vapi.std.errors.internal_server_error",
            ErrorKind::ServiceUnavailable => "com.vmware.vapi.std.errors.service_unavailable",
        }
    }
}

/// vAPI `com.vmware.vapi.std.localizable_message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocalizableMessage {
    /// Stable identifier of the message.
    #[schema(example = "com.vmware.content.library.item.download_session.not_found")]
    pub id: String,
    /// The message in English.
    pub default_message: String,
    /// Values substituted into the message.
    pub args: Vec<String>,
}

impl LocalizableMessage {
    pub fn new(id: &str, default_message: impl Into<String>, args: &[&str]) -> Self {
        LocalizableMessage {
            id: id.to_string(),
            default_message: default_message.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// Error of any core operation: a kind, messages for the client, and an
/// optional internal cause that only the log sees.
pub struct Error {
    pub kind: ErrorKind,
    pub messages: Vec<LocalizableMessage>,
    pub source: Option<anyhow::Error>,
    /// HTTP status when it differs from the kind's (413 for an oversize body, 408
    /// for one too slow).
    pub status: Option<u16>,
    /// Seconds a refused client should wait (`Retry-After`); every
    /// SERVICE_UNAVAILABLE carries one, 1 s unless set.
    pub retry_after: Option<u64>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, id: &str, message: impl Into<String>, args: &[&str]) -> Self {
        Error {
            kind,
            messages: vec![LocalizableMessage::new(id, message, args)],
            source: None,
            status: None,
            retry_after: None,
        }
    }

    pub fn invalid_argument(id: &str, message: impl Into<String>, args: &[&str]) -> Self {
        Self::new(ErrorKind::InvalidArgument, id, message, args)
    }

    pub fn not_found(id: &str, message: impl Into<String>, args: &[&str]) -> Self {
        Self::new(ErrorKind::NotFound, id, message, args)
    }

    pub fn not_allowed(id: &str, message: impl Into<String>, args: &[&str]) -> Self {
        Self::new(ErrorKind::NotAllowedInCurrentState, id, message, args)
    }

    pub fn already_exists(id: &str, message: impl Into<String>, args: &[&str]) -> Self {
        Self::new(ErrorKind::AlreadyExists, id, message, args)
    }

    pub fn resource_busy(id: &str, message: impl Into<String>, args: &[&str]) -> Self {
        Error::new(ErrorKind::ResourceBusy, id, message, args)
    }

    pub fn unsupported(id: &str, message: impl Into<String>, args: &[&str]) -> Self {
        Self::new(ErrorKind::Unsupported, id, message, args)
    }

    pub fn unauthorized(id: &str, message: impl Into<String>, args: &[&str]) -> Self {
        Self::new(ErrorKind::Unauthorized, id, message, args)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorKind::Unauthenticated,
            "com.vmware.vapi.endpoint.method.authentication.required",
            "This method requires authentication.",
            &[],
        )
    }

    /// An unexpected failure: the client learns only that something went wrong.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let text = "Internal server error; see the service log.";
        Self::caused(ErrorKind::InternalServerError, text, cause.into())
    }

    /// A transient failure (database or object store unreachable): retry.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        let text = "The service is temporarily unavailable; try again.";
        Self::caused(ErrorKind::ServiceUnavailable, text, cause.into())
    }

    /// The server's own failure: the client sees the kind's standard message,
    /// only the log sees the cause.
    fn caused(kind: ErrorKind, text: &str, cause: anyhow::Error) -> Self {
        let mut e = Self::new(kind, kind.vapi_type(), text, &[]);
        e.source = Some(cause);
        e
    }

    /// The HTTP status a REST surface answers with.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.kind.http_status())
    }

    /// A request body larger than the configured limit.
    pub fn payload_too_large(limit: usize) -> Self {
        let mut e = Self::invalid_argument(
            "com.vmware.vapi.rest.payload_too_large",
            format!("The request body is larger than {limit} bytes."),
            &[&limit.to_string()],
        );
        e.status = Some(413);
        e
    }

    /// A request body that did not arrive as fast as the edge requires
    /// (`how`: "within 10 seconds"); the connection closes after the answer.
    pub fn body_too_slow(how: &str) -> Self {
        let mut e = Self::invalid_argument(
            "com.vmware.vapi.rest.request_body_timeout",
            format!("The request body did not arrive {how}."),
            &[how],
        );
        e.status = Some(408);
        e
    }

    /// The `Retry-After` seconds of a SERVICE_UNAVAILABLE answer; None for other kinds.
    pub fn retry_after_secs(&self) -> Option<u64> {
        (self.kind == ErrorKind::ServiceUnavailable).then(|| self.retry_after.unwrap_or(1))
    }

    /// Logs the cause when the error is the server's fault.
    pub fn log(&self) {
        match self.kind {
            ErrorKind::InternalServerError => {
                tracing::error!(error = ?self.source, "internal error");
            }
            // A deliberate refusal (overload, throttling) logs where it is made.
            ErrorKind::ServiceUnavailable if self.source.is_some() => {
                tracing::warn!(error = ?self.source, "service unavailable");
            }
            _ => {}
        }
    }

    pub fn first_message(&self) -> &str {
        self.messages
            .first()
            .map(|m| m.default_message.as_str())
            .unwrap_or("")
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.first_message())?;
        if let Some(source) = &self.source {
            write!(f, " ({source:#})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.first_message())
    }
}

impl std::error::Error for Error {}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        // A store that cannot be reached (refused, timed out, cut off after the
        // client's own retries) is the client's cue to retry, like a database
        // that is down; anything else (a missing object, a refusal) is ours.
        if store_unreachable(&e) {
            Error::unavailable(e)
        } else {
            Error::internal(e)
        }
    }
}

/// Whether an object-store error is a transport failure rather than an answer.
fn store_unreachable(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        cause = err.source();
    }
    false
}
