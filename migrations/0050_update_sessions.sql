-- Update sessions (issue 13): content enters through the API. A session
-- collects files (uploaded bytes land in the content store, reserved in
-- content_objects, referenced here until complete publishes them as the item's
-- next content version). Expiry deletes a session and its files; what they
-- received is then unreferenced and the collector takes it.
CREATE TABLE update_sessions (
    id              uuid PRIMARY KEY,
    owner_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    library_item_id uuid NOT NULL REFERENCES library_items (id) ON DELETE CASCADE,
    content_version bigint NOT NULL,
    state           text NOT NULL DEFAULT 'ACTIVE'
                    CHECK (state IN ('ACTIVE', 'DONE', 'ERROR', 'CANCELED')),
    client_progress integer NOT NULL DEFAULT 0 CHECK (client_progress BETWEEN 0 AND 100),
    error_message   jsonb,
    expiration_time timestamptz NOT NULL,
    client_token    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, client_token)
);
-- One ACTIVE session per item (a second create answers RESOURCE_BUSY); an
-- expired one is deleted by the create that finds it in the way.
CREATE UNIQUE INDEX update_sessions_one_active ON update_sessions (library_item_id)
    WHERE state = 'ACTIVE';
CREATE INDEX update_sessions_owner ON update_sessions (owner_id, library_item_id);
CREATE INDEX update_sessions_expiration ON update_sessions (expiration_time);

CREATE TABLE update_files (
    session_id        uuid NOT NULL REFERENCES update_sessions (id) ON DELETE CASCADE,
    name              text NOT NULL,
    -- remove: complete drops the item's file of this name.
    removed           boolean NOT NULL DEFAULT false,
    source_type       text NOT NULL DEFAULT 'PUSH' CHECK (source_type IN ('NONE', 'PUSH', 'PULL')),
    -- what add declared
    declared_size     bigint CHECK (declared_size >= 0),
    declared_sha256   text CHECK (declared_sha256 ~ '^[0-9a-f]{64}$'),
    status            text NOT NULL DEFAULT 'WAITING_FOR_TRANSFER'
                      CHECK (status IN ('WAITING_FOR_TRANSFER', 'TRANSFERRING', 'READY', 'VALIDATING', 'ERROR')),
    bytes_transferred bigint NOT NULL DEFAULT 0,
    error_message     jsonb,
    -- the transfer that may write this row: a new upload of the file replaces
    -- it, so an older one still streaming can no longer change anything.
    upload_id         uuid,
    -- what was received, once READY
    size              bigint,
    sha256            text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_key       text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, name),
    CHECK (status <> 'READY' OR (content_key IS NOT NULL AND size IS NOT NULL AND sha256 IS NOT NULL))
);
-- "Does anything still reference this object?" (the collector).
CREATE INDEX update_files_content_key ON update_files (content_key) WHERE content_key IS NOT NULL;
