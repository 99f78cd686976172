//! Typed extractors: what a handler's signature names (an authenticated [`Caller`], a
//! well-formed [`Id`], a bounded [`Json`] body, an [`Action`], [`Query`] parameters) is parsed
//! here, before the handler runs, and refused in the shape of the route's surface.
//!
//! Routes are registered with [`get`], [`post`] and [`delete`], which extract a handler's
//! arguments one after the other in the order written, so the first refusal answers:
//! authentication before anything else, exactly as the handler reads.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, Handler, HttpRequest, Responder, Route};
use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::BytesMut;
use futures_util::{future::LocalBoxFuture, StreamExt};
use serde::de::{value::StrDeserializer, DeserializeOwned};
use utoipa::{
    openapi::{
        path::{Parameter, ParameterBuilder, ParameterIn},
        schema::{ObjectBuilder, Type},
        Required,
    },
    IntoParams,
};

use super::{errors::Surface, AppState, SESSION_HEADER};
use crate::{
    domain::{
        Caller, ClientAddr, ItemId, LibraryId, LoginToken, Parsed, Password, SessionId,
        UpdateSessionId, UserName,
    },
    edge::{body::TooSlow, csrf::cookie_may_authenticate},
    error::{Error, Result},
    service::Service,
};

// ------------------------------------------------------------------ routes

macro_rules! methods {
    ($($method:ident)*) => {
        $(
            #[doc = concat!("`", stringify!($method), "` with the arguments of `handler` extracted in order.")]
            pub fn $method<F, Args>(handler: F) -> Route
            where
                F: Handler<Args>,
                InOrder<Args>: FromRequest + 'static,
                F::Output: Responder + 'static,
            {
                web::$method().to(in_order(handler))
            }
        )*
    };
}

methods!(get post delete patch);

fn in_order<F, Args>(handler: F) -> impl Handler<(InOrder<Args>,), Output = F::Output>
where
    F: Handler<Args>,
    InOrder<Args>: FromRequest + 'static,
{
    move |InOrder(args): InOrder<Args>| handler.call(args)
}

/// A handler's arguments, extracted one after the other. actix extracts them all at
/// once, so a cheap refusal (a malformed id) could answer while the login check is
/// still waiting for the database; here the order written is the order checked.
pub struct InOrder<T>(pub T);

macro_rules! in_order_tuple {
    ($($T:ident),+) => {
        impl<$($T: FromRequest + 'static),+> FromRequest for InOrder<($($T,)+)> {
            type Error = actix_web::Error;
            type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

            fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
                let req = req.clone();
                let mut payload = payload.take();
                Box::pin(async move {
                    Ok(InOrder(($(
                        $T::from_request(&req, &mut payload).await.map_err(Into::into)?,
                    )+)))
                })
            }
        }
    };
}

in_order_tuple!(A);
in_order_tuple!(A, B);
in_order_tuple!(A, B, C);
in_order_tuple!(A, B, C, D);
in_order_tuple!(A, B, C, D, E);
in_order_tuple!(A, B, C, D, E, F);

impl FromRequest for InOrder<()> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(_: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(InOrder(())))
    }
}

/// A synchronous extraction, refused in the route's surface.
fn sync<T>(
    req: &HttpRequest,
    parse: impl FnOnce() -> Result<T>,
) -> Ready<Result<T, actix_web::Error>> {
    ready(parse().map_err(|e| Surface::of(req).reject(e)))
}

pub(crate) fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered on the application")
}

/// The service core (a cheap handle).
impl FromRequest for Service {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(state(req).service.clone()))
    }
}

// --------------------------------------------------------------- callers

/// The login token of a request: the `vmware-api-session-id` header, else its cookie,
/// which is refused on requests a cross-site page could have made (see `edge::csrf`).
pub fn session_token(req: &HttpRequest) -> Result<Option<String>> {
    if let Some(v) = req.headers().get(SESSION_HEADER) {
        return Ok(v.to_str().ok().map(|s| s.trim().to_string()));
    }
    let Some(cookie) = req.cookie(SESSION_HEADER) else {
        return Ok(None);
    };
    cookie_may_authenticate(req)?;
    Ok(Some(cookie.value().to_string()))
}

/// The login token the request carries (UNAUTHENTICATED without one, or with one we
/// could never have issued); the operations on the login itself take it.
impl FromRequest for LoginToken {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        sync(req, || login_token(req))
    }
}

/// The request's login token, or UNAUTHENTICATED.
pub fn login_token(req: &HttpRequest) -> Result<LoginToken> {
    LoginToken::parse(&session_token(req)?.ok_or_else(Error::unauthenticated)?)
}

/// The authenticated user behind the request's login token (UNAUTHENTICATED otherwise).
impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let caller = match login_token(&req) {
                Ok(token) => state(&req).service.authenticate(&token).await,
                Err(e) => Err(e),
            };
            caller.map_err(|e| Surface::of(&req).reject(e))
        })
    }
}

/// User name and password of an `Authorization: Basic` header, as sent.
pub fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The user name of a login; one no user can have is a failed login.
pub fn login_name(raw: &str) -> Result<UserName> {
    UserName::parse(raw).inspect_err(|_| {
        tracing::warn!("failed login with an impossible user name");
    })
}

/// The address a request comes from, as login throttling keys it: the TCP peer,
/// or what a trusted proxy forwarded (`edge::client::client_addr`).
pub fn client_addr(req: &HttpRequest) -> ClientAddr {
    ClientAddr::new(crate::edge::client::client_addr(req))
}

/// The credentials of a login (`Authorization: Basic`) and where it comes from:
/// UNAUTHENTICATED without them, a failed login with a user name no user can have.
pub struct BasicAuth {
    pub user: UserName,
    pub password: Password,
    pub client: ClientAddr,
}

impl BasicAuth {
    pub fn of(req: &HttpRequest) -> Result<BasicAuth> {
        let (user, password) = basic_credentials(req).ok_or_else(Error::unauthenticated)?;
        Ok(BasicAuth {
            user: login_name(&user)?,
            password: Password::new(password),
            client: client_addr(req),
        })
    }
}

impl FromRequest for BasicAuth {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        sync(req, || BasicAuth::of(req))
    }
}

/// The `Client-Token` header of create (idempotency): visible ASCII when present.
pub struct ClientTokenHeader(pub Option<String>);

impl FromRequest for ClientTokenHeader {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        sync(req, || {
            let Some(value) = req.headers().get("client-token") else {
                return Ok(ClientTokenHeader(None));
            };
            let text = value.to_str().map_err(|_| {
                Error::invalid_argument(
                    "com.vmware.vapi.std.errors.invalid_client_token",
                    "The Client-Token header must be visible ASCII.",
                    &[],
                )
            })?;
            Ok(ClientTokenHeader(Some(text.to_string())))
        })
    }
}

// ------------------------------------------------------------------- ids

/// An id the route's `{id}` segment names: a string that is not even a well-formed
/// id names nothing, so it answers NOT_FOUND like an unknown one.
pub struct Id<T>(pub T);

/// What a path id is and how the documentation shows it.
pub trait PathId: Sized {
    const DESCRIPTION: &'static str;
    const EXAMPLE: &'static str;
    fn parse(raw: &str) -> Result<Self>;
}

impl<T: PathId> FromRequest for Id<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        sync(req, || {
            T::parse(req.match_info().get("id").unwrap_or_default()).map(Id)
        })
    }
}

impl<T: PathId> IntoParams for Id<T> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(T::DESCRIPTION))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .example(Some(T::EXAMPLE.into()))
            .build()]
    }
}

macro_rules! path_ids {
    ($($ty:ident: $description:literal, $example:literal;)*) => {
        $(
            impl PathId for $ty {
                const DESCRIPTION: &'static str = $description;
                const EXAMPLE: &'static str = $example;
                fn parse(raw: &str) -> Result<Self> {
                    $ty::parse(raw)
                }
            }
        )*
    };
}

path_ids! {
    LibraryId: "Library id.", "5d2f8a10-7c3b-4e9d-a1f6-0e4b3c2d1a98";
    ItemId: "Library item id.", "1c3a9e55-0d6e-4b5e-8f1a-3e2d4c5b6a79";
    SessionId: "Download session id.", "0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0";
    UpdateSessionId: "Update session id.", "7a4c2e19-5b3d-4f60-8e2a-1d9c0b7f3e45";
}

// ----------------------------------------------------------------- query

/// The decoded query string (undecodable bytes are replaced, never refused).
pub struct QueryString(Vec<(String, String)>);

impl QueryString {
    pub fn of(req: &HttpRequest) -> QueryString {
        QueryString(
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// One parameter; a repeated one is INVALID_ARGUMENT.
    pub fn one(&self, name: &str) -> Result<Option<String>> {
        let mut values = self.0.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.clone());
        if values.next().is_some() {
            return Err(Error::invalid_argument(
                "com.vmware.vapi.rest.duplicate_query_parameter",
                format!("Query parameter {name} is given more than once."),
                &[name],
            ));
        }
        Ok(first)
    }

    /// A typed parameter: `T` for a required one, `Option<T>` for an optional one.
    pub fn get<T: QueryField>(&self, name: &str) -> Result<T> {
        T::from_value(name, self.one(name)?)
    }
}

/// A value a query parameter can hold.
pub trait ParamValue: Sized {
    fn parse(raw: String) -> Result<Self>;
}

impl ParamValue for String {
    fn parse(raw: String) -> Result<Self> {
        Ok(raw)
    }
}

impl<T: PathId> ParamValue for T {
    fn parse(raw: String) -> Result<Self> {
        T::parse(&raw)
    }
}

/// A query field: required (`T`) or optional (`Option<T>`).
pub trait QueryField: Sized {
    fn from_value(name: &str, value: Option<String>) -> Result<Self>;
}

impl<T: ParamValue> QueryField for T {
    fn from_value(name: &str, value: Option<String>) -> Result<Self> {
        let raw = value.ok_or_else(|| {
            Error::invalid_argument(
                "com.vmware.vapi.rest.missing_parameter",
                format!("Query parameter {name} is required."),
                &[name],
            )
        })?;
        T::parse(raw)
    }
}

impl<T: ParamValue> QueryField for Option<T> {
    fn from_value(_: &str, value: Option<String>) -> Result<Self> {
        value.map(T::parse).transpose()
    }
}

/// A value parsed here whose error the operation reports in its turn (see [`Parsed`]).
impl<T: PathId> ParamValue for Parsed<T> {
    fn parse(raw: String) -> Result<Self> {
        Ok(T::parse(&raw))
    }
}

/// Query parameters declared as a struct (see [`query_params!`]): the same struct
/// documents them.
pub struct Query<T>(pub T);

pub trait FromQuery: Sized {
    fn from_query(query: &QueryString) -> Result<Self>;
}

impl<T: FromQuery> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        sync(req, || T::from_query(&QueryString::of(req)).map(Query))
    }
}

/// A struct of query parameters: documented by `IntoParams`, read field by field in
/// the order declared (`T` required, `Option<T>` optional, repeats refused).
#[macro_export]
macro_rules! query_params {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, utoipa::IntoParams)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $crate::api::extract::FromQuery for $name {
            fn from_query(
                query: &$crate::api::extract::QueryString,
            ) -> $crate::error::Result<Self> {
                Ok($name {
                    $($field: query.get(stringify!($field))?,)*
                })
            }
        }
    };
}

/// The value of the surface's action parameter (`action` / `~action`): an enum whose
/// serde names are the actions (`Option<A>` where the parameter may be absent).
/// Missing or unknown is INVALID_ARGUMENT.
pub struct Action<A>(pub A);

pub trait FromAction: Sized {
    fn from_action(value: Option<&str>) -> Option<Self>;
}

/// An action enum: deserialized from the parameter's text.
pub trait ActionName: DeserializeOwned {}

fn action_named<A: ActionName>(value: &str) -> Option<A> {
    A::deserialize(StrDeserializer::<serde::de::value::Error>::new(value)).ok()
}

impl<A: ActionName> FromAction for A {
    fn from_action(value: Option<&str>) -> Option<Self> {
        value.and_then(action_named)
    }
}

impl<A: ActionName> FromAction for Option<A> {
    fn from_action(value: Option<&str>) -> Option<Self> {
        match value {
            None => Some(None),
            Some(v) => action_named(v).map(Some),
        }
    }
}

/// An action query value no operation answers to.
pub fn unknown_action(param: &str, action: Option<&str>) -> Error {
    let a = action.unwrap_or("");
    Error::invalid_argument(
        "com.vmware.vapi.rest.unknown_action",
        format!("Unknown or missing {param} {a:?}."),
        &[a],
    )
}

impl<A: FromAction> FromRequest for Action<A> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        sync(req, || {
            let param = Surface::of(req).action_param();
            let value = QueryString::of(req).one(param)?;
            A::from_action(value.as_deref())
                .map(Action)
                .ok_or_else(|| unknown_action(param, value.as_deref()))
        })
    }
}

// ------------------------------------------------------------------ bodies

/// A JSON request body type, and what an absent body (empty, or `null`: the spec
/// declares optional bodies nullable, so generated clients may send it) means for it.
pub trait JsonBody: DeserializeOwned {
    fn absent() -> Result<Self>;
}

/// What an absent body means for each body type: `default` (its default value) or
/// `needs "field"` (INVALID_ARGUMENT naming what the operation cannot do without).
macro_rules! json_bodies {
    ($($ty:ident: $absent:ident $($needs:literal)?;)*) => {
        $(
            impl $crate::api::extract::JsonBody for $ty {
                fn absent() -> $crate::error::Result<Self> {
                    $crate::api::extract::json_bodies!(@absent $absent $($needs)?)
                }
            }
        )*
    };
    (@absent default) => { Ok(Self::default()) };
    (@absent needs $needs:literal) => { $crate::api::extract::missing_body($needs) };
}

pub(crate) use json_bodies;

/// The body an operation cannot do without: INVALID_ARGUMENT naming `needs` when absent.
pub fn missing_body<T>(needs: &str) -> Result<T> {
    Err(Error::invalid_argument(
        "com.vmware.vapi.rest.missing_body",
        format!("This operation needs a JSON body with {needs}."),
        &[needs],
    ))
}

/// The request body, not yet read: operations that serve several actions read it
/// only for the actions that take one.
pub struct Body {
    payload: Payload,
    limit: usize,
}

impl Body {
    /// The raw bytes, at most the configured limit (413 beyond).
    pub async fn bytes(mut self) -> Result<bytes::Bytes> {
        let mut body = BytesMut::new();
        while let Some(chunk) = self.payload.next().await {
            let chunk = chunk.map_err(|e| match TooSlow::of(&e) {
                Some(rule) => Error::body_too_slow(&rule.describe()),
                None => Error::invalid_argument(
                    "com.vmware.vapi.rest.bad_request_body",
                    format!("The request body could not be read: {e}"),
                    &[],
                ),
            })?;
            if body.len() + chunk.len() > self.limit {
                return Err(Error::payload_too_large(self.limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// The body as `T`.
    pub async fn json<T: JsonBody>(self) -> Result<T> {
        let bytes = self.bytes().await?;
        match parse_json(&bytes)? {
            Some(value) => Ok(value),
            None => T::absent(),
        }
    }
}

/// Parses a JSON body; whitespace only and `null` are `None`.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Option<T>>(body).map_err(|e| {
        Error::invalid_argument(
            "com.vmware.vapi.rest.json_parse_error",
            format!("The request body is not valid: {e}"),
            &[&e.to_string()],
        )
    })
}

impl FromRequest for Body {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(Ok(Body {
            payload: payload.take(),
            limit: state(req).max_body,
        }))
    }
}

/// A JSON body, read (bounded) and parsed before the handler runs.
pub struct Json<T>(pub T);

impl<T: JsonBody + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let surface = Surface::of(req);
        let body = Body {
            payload: payload.take(),
            limit: state(req).max_body,
        };
        Box::pin(async move { body.json().await.map(Json).map_err(|e| surface.reject(e)) })
    }
}
