-- The catalog managed through the API (issue 12): versions, case-insensitive
-- unique names, idempotent creates, the server's identity, download sessions
-- that outlive their item (to answer ERROR), and collection of unused content.

-- `server_guid` of every library: one id for the whole cluster, made once.
CREATE TABLE server_identity (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    server_guid uuid NOT NULL
);
INSERT INTO server_identity (server_guid) VALUES (gen_random_uuid());

-- Libraries: `version` grows on every change of the library's own properties;
-- a create's client token answers the same library to the same user.
ALTER TABLE libraries
    ADD COLUMN version      bigint NOT NULL DEFAULT 1,
    ADD COLUMN created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN client_token text,
    ADD CONSTRAINT libraries_client_token UNIQUE (created_by, client_token);

-- Names are unique regardless of case (find matches them that way, and govc
-- paths must name one library). Names that only differed in case before get
-- their id appended, the oldest keeping its name.
UPDATE libraries l SET name = l.name || ' (' || l.id || ')'
WHERE EXISTS (SELECT 1 FROM libraries o
              WHERE lower(o.name) = lower(l.name)
                AND (o.creation_time, o.id) < (l.creation_time, l.id));
ALTER TABLE libraries DROP CONSTRAINT libraries_name_key;
CREATE UNIQUE INDEX libraries_name_ci ON libraries (lower(name));

-- Items: `version` and `metadata_version` grow on property changes (name,
-- description, type), `content_version` on each new file list.
ALTER TABLE library_items
    ADD COLUMN version          bigint NOT NULL DEFAULT 1,
    ADD COLUMN metadata_version bigint NOT NULL DEFAULT 1,
    ADD COLUMN created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN client_token     text,
    ADD CONSTRAINT library_items_client_token UNIQUE (created_by, client_token);

UPDATE library_items i SET name = i.name || ' (' || i.id || ')'
WHERE EXISTS (SELECT 1 FROM library_items o
              WHERE o.library_id = i.library_id AND lower(o.name) = lower(i.name)
                AND (o.creation_time, o.id) < (i.creation_time, i.id));
ALTER TABLE library_items DROP CONSTRAINT library_items_library_id_name_key;
CREATE UNIQUE INDEX library_items_name_ci ON library_items (library_id, lower(name));
-- find by name across every library.
CREATE INDEX library_items_lower_name ON library_items (lower(name));

-- A download session outlives its item: deleting the item turns the session
-- and its files to ERROR (their URIs stop at once) instead of making them
-- vanish, so clients learn why. Expiry deletes them as usual.
ALTER TABLE download_sessions DROP CONSTRAINT download_sessions_library_item_id_fkey;
CREATE INDEX download_sessions_item ON download_sessions (library_item_id);

-- Objects of the content store, collected once nothing references them. Like
-- artifacts: a writer reserves the row (last_used_at) before it moves an
-- object under the key; a collector marks the row (deleting_since) before it
-- deletes the object, so neither deletes what the other just wrote.
CREATE TABLE content_objects (
    content_key    text PRIMARY KEY,
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    deleting_since timestamptz
);
INSERT INTO content_objects (content_key)
SELECT DISTINCT content_key FROM item_files;
CREATE INDEX content_objects_last_used ON content_objects (last_used_at);
-- "Does anything still reference this object?"
CREATE INDEX item_files_content_key ON item_files (content_key);
CREATE INDEX download_files_content_key_staging ON download_files (content_key)
    WHERE status IN ('PREPARE_REQUESTED', 'PREPARING');
