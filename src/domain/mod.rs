//! Value types and state machines of the contract, pure: no I/O. Raw client
//! strings become these types at the edge, so the core never re-checks them.

pub mod catalog;
pub mod credentials;
pub mod models;
pub mod update;

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};
pub use credentials::{ClientAddr, LoginToken, Password, UserName, MAX_USER_NAME};

/// A client value parsed at the edge whose error the operation reports in its
/// turn: after the checks the contract makes first (the caller's privileges,
/// the session or item the value concerns). An operation thus answers the same
/// whichever of its inputs is wrong, and the core still never sees a raw string.
pub type Parsed<T> = Result<T>;

macro_rules! id_type {
    ($name:ident, $what:literal, $msg_id:literal) => {
        /// An identifier of the contract: a UUID on the wire and in the database.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A string that is not even a well-formed id names nothing: NOT_FOUND.
            pub fn parse(raw: &str) -> Result<Self> {
                Uuid::parse_str(raw.trim())
                    .map($name)
                    .map_err(|_| Self::not_found(raw))
            }

            pub fn not_found(raw: &str) -> Error {
                Error::not_found(
                    $msg_id,
                    format!("{} {} does not exist.", $what, raw),
                    &[raw],
                )
            }

            pub fn new_random() -> Self {
                $name(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(LibraryId, "Library", "com.vmware.content.library.not_found");
id_type!(
    ItemId,
    "Library item",
    "com.vmware.content.library.item.not_found"
);
id_type!(
    UpdateSessionId,
    "Update session",
    "com.vmware.content.library.item.update_session.not_found"
);
id_type!(
    SessionId,
    "Download session",
    "com.vmware.content.library.item.download_session.not_found"
);

/// State of a download session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionState {
    Active,
    Canceled,
    Error,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Active => "ACTIVE",
            SessionState::Canceled => "CANCELED",
            SessionState::Error => "ERROR",
        }
    }

    /// The state rule of keep_alive, cancel, fail and prepare: only an ACTIVE
    /// session allows them (NOT_ALLOWED_IN_CURRENT_STATE otherwise).
    pub fn require_active(self, op: &str, session: SessionId) -> Result<()> {
        if self == SessionState::Active {
            return Ok(());
        }
        Err(self.refuses(op, session))
    }

    /// NOT_ALLOWED_IN_CURRENT_STATE: `op` found the session in this (not ACTIVE) state.
    pub fn refuses(self, op: &str, session: SessionId) -> Error {
        let sid = session.to_string();
        Error::not_allowed(
            "com.vmware.content.library.item.download_session.not_active",
            format!(
                "Operation {op} is not allowed: download session {sid} is {}.",
                self.as_str()
            ),
            &[op, &sid, self.as_str()],
        )
    }
}

/// Prepare status of one file of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PrepareStatus {
    Unprepared,
    PrepareRequested,
    Preparing,
    Prepared,
    Error,
}

impl PrepareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PrepareStatus::Unprepared => "UNPREPARED",
            PrepareStatus::PrepareRequested => "PREPARE_REQUESTED",
            PrepareStatus::Preparing => "PREPARING",
            PrepareStatus::Prepared => "PREPARED",
            PrepareStatus::Error => "ERROR",
        }
    }

    /// `prepare` starts work only from these; otherwise it reports the current info.
    pub fn can_request_prepare(self) -> bool {
        matches!(self, PrepareStatus::Unprepared | PrepareStatus::Error)
    }
}

/// How a prepared file is handed out.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndpointType {
    #[default]
    Https,
    Direct,
}

impl EndpointType {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointType::Https => "HTTPS",
            EndpointType::Direct => "DIRECT",
        }
    }
}

impl FromStr for EndpointType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "HTTPS" => Ok(EndpointType::Https),
            "DIRECT" => Ok(EndpointType::Direct),
            other => Err(Error::invalid_argument(
                "com.vmware.content.library.item.downloadsession.file.invalid_endpoint_type",
                format!("Endpoint type {other:?} is not one of HTTPS, DIRECT."),
                &[other],
            )),
        }
    }
}

/// Client progress of a session, 0..=100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress(u8);

impl Progress {
    pub fn new(value: i64) -> Result<Self> {
        if (0..=100).contains(&value) {
            Ok(Progress(value as u8))
        } else {
            let v = value.to_string();
            Err(Error::invalid_argument(
                "com.vmware.content.library.item.download_session.invalid_progress",
                format!("Progress {value} is not between 0 and 100."),
                &[&v],
            ))
        }
    }

    pub fn get(self) -> i32 {
        i32::from(self.0)
    }
}

/// Name of a file within a library item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = raw.is_empty()
            || raw.len() > 255
            || raw == "."
            || raw == ".."
            || raw.contains(['/', '\\', '\0'])
            || raw.chars().any(char::is_control);
        if bad {
            return Err(Error::invalid_argument(
                "com.vmware.content.library.item.file.invalid_name",
                format!("File name {raw:?} is not a valid file name."),
                &[raw],
            ));
        }
        Ok(FileName(raw.to_string()))
    }

    /// A name looked up among a library item's files: one that no file can
    /// have is simply not there ([`FileName::missing`]).
    pub fn parse_or_missing(raw: &str) -> Result<Self> {
        FileName::parse(raw).map_err(|_| FileName::missing(raw))
    }

    /// The item (and so the session) has no file of this name.
    pub fn missing(name: &str) -> Error {
        Error::invalid_argument(
            "com.vmware.content.library.item.file.not_found",
            format!("File {name:?} does not exist in the library item."),
            &[name],
        )
    }

    /// A name looked up in item storage, where VMware answers a file the item
    /// does not have with NOT_FOUND ([`FileName::not_stored`]).
    pub fn parse_or_not_stored(raw: &str) -> Result<Self> {
        FileName::parse(raw).map_err(|_| FileName::not_stored(raw))
    }

    /// Item storage has no file of this name.
    pub fn not_stored(name: &str) -> Error {
        Error::not_found(
            "com.vmware.content.library.item.storage.file_not_found",
            format!("File {name:?} does not exist in the library item's storage."),
            &[name],
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest accepted `Client-Token`, in bytes.
pub const MAX_CLIENT_TOKEN: usize = 256;

/// The idempotency token of a create: the same token from the same user
/// answers the same session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientToken(String);

impl ClientToken {
    pub fn parse(raw: &str) -> Result<Self> {
        // NUL: PostgreSQL text cannot hold it.
        if raw.is_empty() || raw.len() > MAX_CLIENT_TOKEN || raw.contains('\0') {
            return Err(Error::invalid_argument(
                "com.vmware.vapi.std.errors.invalid_client_token",
                format!(
                    "The client token must be 1 to {MAX_CLIENT_TOKEN} characters, none of them NUL."
                ),
                &[],
            ));
        }
        Ok(ClientToken(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a create spec asks for, parsed at the edge. The core reports its
/// errors after the privilege check, item first, then token.
#[derive(Debug)]
pub struct NewSession {
    pub library_item_id: Parsed<ItemId>,
    pub client_token: Parsed<Option<ClientToken>>,
}

impl NewSession {
    pub fn parse(library_item_id: Option<&str>, client_token: Option<&str>) -> NewSession {
        NewSession {
            library_item_id: library_item_id
                .ok_or_else(|| {
                    Error::invalid_argument(
                        "com.vmware.content.library.item.download_session.missing_library_item_id",
                        "The create spec must name a library_item_id.",
                        &[],
                    )
                })
                .and_then(ItemId::parse),
            client_token: client_token.map(ClientToken::parse).transpose(),
        }
    }
}

/// Longest accepted `client_error_message`, in bytes.
pub const MAX_CLIENT_ERROR_MESSAGE: usize = 4096;

/// Why a client failed its session (`fail`), kept as the session's error message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientErrorMessage(String);

impl ClientErrorMessage {
    /// `fail` requires one: `None` is an error too.
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        match raw {
            // PostgreSQL (jsonb) cannot hold it.
            Some(m) if m.contains('\0') => Err(Error::invalid_argument(
                "com.vmware.content.library.item.download_session.fail.invalid_message",
                "client_error_message must not contain NUL characters.",
                &[],
            )),
            Some(m) if m.len() <= MAX_CLIENT_ERROR_MESSAGE => Ok(ClientErrorMessage(m.to_string())),
            Some(_) => Err(Error::invalid_argument(
                "com.vmware.content.library.item.download_session.fail.message_too_long",
                format!("client_error_message is longer than {MAX_CLIENT_ERROR_MESSAGE} bytes."),
                &[],
            )),
            None => Err(Error::invalid_argument(
                "com.vmware.content.library.item.download_session.fail.missing_message",
                "fail requires a client_error_message.",
                &[],
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Privileges a user can hold, under the ids vCenter gives them ("Privilege Name
/// in the API" of VMware's Content Library privileges; the SDK docstrings name
/// the same ids). All are global here: a privilege holds for every library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Privilege {
    Anonymous,
    Read,
    DownloadSession,
    ReadStorage,
    CreateLocalLibrary,
    UpdateLocalLibrary,
    DeleteLocalLibrary,
    UpdateLibrary,
    AddLibraryItem,
    UpdateLibraryItem,
    DeleteLibraryItem,
    UpdateSession,
}

impl Privilege {
    pub const ALL: [Privilege; 12] = [
        Privilege::Anonymous,
        Privilege::Read,
        Privilege::DownloadSession,
        Privilege::ReadStorage,
        Privilege::CreateLocalLibrary,
        Privilege::UpdateLocalLibrary,
        Privilege::DeleteLocalLibrary,
        Privilege::UpdateLibrary,
        Privilege::AddLibraryItem,
        Privilege::UpdateLibraryItem,
        Privilege::DeleteLibraryItem,
        Privilege::UpdateSession,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Anonymous => "System.Anonymous",
            Privilege::Read => "System.Read",
            Privilege::DownloadSession => "ContentLibrary.DownloadSession",
            Privilege::ReadStorage => "ContentLibrary.ReadStorage",
            Privilege::CreateLocalLibrary => "ContentLibrary.CreateLocalLibrary",
            Privilege::UpdateLocalLibrary => "ContentLibrary.UpdateLocalLibrary",
            Privilege::DeleteLocalLibrary => "ContentLibrary.DeleteLocalLibrary",
            Privilege::UpdateLibrary => "ContentLibrary.UpdateLibrary",
            Privilege::AddLibraryItem => "ContentLibrary.AddLibraryItem",
            Privilege::UpdateLibraryItem => "ContentLibrary.UpdateLibraryItem",
            Privilege::DeleteLibraryItem => "ContentLibrary.DeleteLibraryItem",
            Privilege::UpdateSession => "ContentLibrary.UpdateSession",
        }
    }
}

impl FromStr for Privilege {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Privilege::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown privilege {s:?}; known: {}",
                    Privilege::ALL.map(|p| p.as_str()).join(", ")
                )
            })
    }
}

/// The authenticated caller of an operation.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: Uuid,
    pub name: String,
    pub privileges: Vec<Privilege>,
}

impl Caller {
    pub fn has(&self, p: Privilege) -> bool {
        p == Privilege::Anonymous || self.privileges.contains(&p)
    }

    /// UNAUTHORIZED unless the caller holds `p`.
    pub fn require(&self, p: Privilege) -> Result<()> {
        if self.has(p) {
            Ok(())
        } else {
            Err(Error::unauthorized(
                "com.vmware.vapi.std.errors.unauthorized",
                format!(
                    "User {} does not have the privilege {} required by this operation.",
                    self.name,
                    p.as_str()
                ),
                &[&self.name, p.as_str()],
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn only_active_sessions_allow_state_changes() {
        let id = SessionId::new_random();
        assert!(SessionState::Active.require_active("cancel", id).is_ok());
        for state in [SessionState::Canceled, SessionState::Error] {
            let e = state.require_active("keep_alive", id).unwrap_err();
            assert_eq!(e.kind, ErrorKind::NotAllowedInCurrentState);
            assert!(e.first_message().contains(state.as_str()));
        }
    }

    #[test]
    fn malformed_ids_are_not_found() {
        let e = SessionId::parse("nope").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(SessionId::parse("0b1e7b3a-2b54-4a57-9a0e-3c9c43b1a2f0").is_ok());
    }

    #[test]
    fn progress_bounds() {
        assert!(Progress::new(0).is_ok());
        assert!(Progress::new(100).is_ok());
        assert_eq!(
            Progress::new(101).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Progress::new(-1).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn file_names() {
        assert!(FileName::parse("disk-0.vmdk").is_ok());
        for bad in ["", "..", "a/b", "a\\b", "x\0y", "tab\there"] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn item_file_names_that_cannot_exist_are_missing() {
        let e = FileName::parse_or_missing("a/b").unwrap_err();
        assert_eq!(
            e.messages[0].id,
            "com.vmware.content.library.item.file.not_found"
        );
        assert!(FileName::parse_or_missing("disk-0.vmdk").is_ok());
    }

    #[test]
    fn client_tokens() {
        assert!(ClientToken::parse("6f9d2c4e").is_ok());
        for bad in [
            String::new(),
            "a\0".into(),
            "t".repeat(MAX_CLIENT_TOKEN + 1),
        ] {
            assert_eq!(
                ClientToken::parse(&bad).unwrap_err().messages[0].id,
                "com.vmware.vapi.std.errors.invalid_client_token"
            );
        }
    }

    #[test]
    fn new_session_errors_come_item_first() {
        let spec = NewSession::parse(None, Some(""));
        assert!(spec
            .library_item_id
            .unwrap_err()
            .first_message()
            .contains("library_item_id"));
        assert!(spec.client_token.is_err());
        let spec = NewSession::parse(Some("nope"), None);
        assert_eq!(spec.library_item_id.unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(spec.client_token.unwrap(), None);
    }

    #[test]
    fn client_error_messages() {
        assert_eq!(
            ClientErrorMessage::parse(Some("disk full"))
                .unwrap()
                .as_str(),
            "disk full"
        );
        for (raw, id) in [
            (Some("x\0y".to_string()), "invalid_message"),
            (
                Some("m".repeat(MAX_CLIENT_ERROR_MESSAGE + 1)),
                "message_too_long",
            ),
            (None, "missing_message"),
        ] {
            let e = ClientErrorMessage::parse(raw.as_deref()).unwrap_err();
            assert!(e.messages[0].id.ends_with(id), "{e:?}");
        }
    }

    #[test]
    fn endpoint_types() {
        assert_eq!(
            "DIRECT".parse::<EndpointType>().unwrap(),
            EndpointType::Direct
        );
        assert!("direct".parse::<EndpointType>().is_err());
    }

    #[test]
    fn privileges_parse_and_anonymous_is_implicit() {
        let caller = Caller {
            user_id: Uuid::nil(),
            name: "u".into(),
            privileges: vec!["System.Read".parse().unwrap()],
        };
        assert!(caller.has(Privilege::Anonymous));
        assert!(caller.has(Privilege::Read));
        assert_eq!(
            caller.require(Privilege::DownloadSession).unwrap_err().kind,
            ErrorKind::Unauthorized
        );
        assert!("Bogus".parse::<Privilege>().is_err());
    }

    #[test]
    fn prepare_transitions() {
        assert!(PrepareStatus::Unprepared.can_request_prepare());
        assert!(PrepareStatus::Error.can_request_prepare());
        assert!(!PrepareStatus::Preparing.can_request_prepare());
        assert!(!PrepareStatus::Prepared.can_request_prepare());
    }
}
