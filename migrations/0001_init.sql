-- Catalog: libraries, items and their files. Bytes live in the content store
-- under item_files.content_key; each import of an item is a new content version.
CREATE TABLE libraries (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL UNIQUE,
    description        text NOT NULL DEFAULT '',
    creation_time      timestamptz NOT NULL DEFAULT now(),
    last_modified_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE library_items (
    id                 uuid PRIMARY KEY,
    library_id         uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    name               text NOT NULL,
    type               text NOT NULL DEFAULT 'file',
    description        text NOT NULL DEFAULT '',
    content_version    bigint NOT NULL DEFAULT 1,
    creation_time      timestamptz NOT NULL DEFAULT now(),
    last_modified_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (library_id, name)
);

CREATE TABLE item_files (
    item_id         uuid NOT NULL REFERENCES library_items (id) ON DELETE CASCADE,
    content_version bigint NOT NULL,
    name            text NOT NULL,
    size            bigint NOT NULL CHECK (size >= 0),
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_key     text NOT NULL,
    PRIMARY KEY (item_id, content_version, name)
);

-- Users and login sessions. Only a hash of each token is stored.
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    privileges    text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE login_sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX login_sessions_expires_at ON login_sessions (expires_at);

-- Failed logins per user name, shared by every instance, to slow down guessing.
CREATE TABLE login_failures (
    user_name    text PRIMARY KEY,
    failures     integer NOT NULL DEFAULT 0,
    last_failure timestamptz NOT NULL DEFAULT now()
);

-- Download sessions and the per-file prepare state.
CREATE TABLE download_sessions (
    id                        uuid PRIMARY KEY,
    owner_id                  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    library_item_id           uuid NOT NULL REFERENCES library_items (id) ON DELETE CASCADE,
    content_version           bigint NOT NULL,
    state                     text NOT NULL DEFAULT 'ACTIVE' CHECK (state IN ('ACTIVE', 'CANCELED', 'ERROR')),
    client_progress           integer NOT NULL DEFAULT 0 CHECK (client_progress BETWEEN 0 AND 100),
    error_message             jsonb,
    expiration_time           timestamptz NOT NULL,
    created_with_read_storage boolean NOT NULL DEFAULT false,
    client_token              text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, client_token)
);
CREATE INDEX download_sessions_owner ON download_sessions (owner_id, library_item_id);
CREATE INDEX download_sessions_expiration ON download_sessions (expiration_time);

-- Prepared bytes, content-addressed: one staged object per distinct SHA-256.
CREATE TABLE artifacts (
    sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size         bigint NOT NULL,
    transfer_key text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE download_files (
    session_id        uuid NOT NULL REFERENCES download_sessions (id) ON DELETE CASCADE,
    name              text NOT NULL,
    -- what the catalog promises for this file (copied at session create)
    expected_size     bigint NOT NULL,
    expected_sha256   text NOT NULL,
    content_key       text NOT NULL,
    -- prepare state
    status            text NOT NULL DEFAULT 'UNPREPARED'
                      CHECK (status IN ('UNPREPARED', 'PREPARE_REQUESTED', 'PREPARING', 'PREPARED', 'ERROR')),
    endpoint_type     text CHECK (endpoint_type IN ('HTTPS', 'DIRECT')),
    size              bigint,
    bytes_transferred bigint NOT NULL DEFAULT 0,
    checksum          text,
    error_message     jsonb,
    requested_at      timestamptz,
    -- worker claim
    lease_owner       uuid,
    lease_until       timestamptz,
    attempts          integer NOT NULL DEFAULT 0,
    artifact_sha256   text REFERENCES artifacts (sha256),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, name)
);
CREATE INDEX download_files_queue ON download_files (requested_at) WHERE status = 'PREPARE_REQUESTED';
CREATE INDEX download_files_leases ON download_files (lease_until) WHERE status = 'PREPARING';
CREATE INDEX download_files_artifact ON download_files (artifact_sha256) WHERE artifact_sha256 IS NOT NULL;

-- Keys that sign download URIs when none are configured: generated once,
-- shared by every instance on this database.
CREATE TABLE signing_keys (
    kid        text PRIMARY KEY,
    secret     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
