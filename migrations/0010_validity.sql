-- Invalidation of every instance's validity cache, published by the database
-- itself: a row change of a cached table (a login, a user, a download session,
-- its files, an artifact) sends a NOTIFY on `dls_validity` at commit, whatever
-- code path made it (an API call, `user remove`, maintenance, a manual UPDATE).
-- Payloads name what to drop: `l:<token hash hex>`, `u:<user id>`,
-- `s:<session id>`, `a:<artifact sha256>`. PostgreSQL folds identical
-- payloads of one transaction into one notification.
--
-- A lease renewal (the expiry moved later, nothing else changed) publishes
-- nothing: an instance that cached the earlier expiry re-reads the row within
-- a second anyway, and before it would refuse a session or token as expired
-- it asks the database.

CREATE FUNCTION dls_validity_login() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.expires_at >= OLD.expires_at
       AND (to_jsonb(NEW) - 'expires_at' - 'last_used_at')
           = (to_jsonb(OLD) - 'expires_at' - 'last_used_at') THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('dls_validity', 'l:' || encode(OLD.token_hash, 'hex'));
    RETURN NULL;
END $$;

CREATE TRIGGER login_sessions_validity AFTER UPDATE OR DELETE ON login_sessions
    FOR EACH ROW EXECUTE FUNCTION dls_validity_login();

CREATE FUNCTION dls_validity_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dls_validity', 'u:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER users_validity AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION dls_validity_user();

CREATE FUNCTION dls_validity_session() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.expiration_time >= OLD.expiration_time
       AND (to_jsonb(NEW) - 'expiration_time') = (to_jsonb(OLD) - 'expiration_time') THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('dls_validity', 's:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER download_sessions_validity AFTER UPDATE OR DELETE ON download_sessions
    FOR EACH ROW EXECUTE FUNCTION dls_validity_session();

-- Files are cached with their session (state, endpoint type, staged object).
-- Inserts happen only with a new session, which no instance has cached yet.
CREATE FUNCTION dls_validity_file() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dls_validity', 's:' || OLD.session_id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER download_files_validity AFTER UPDATE OR DELETE ON download_files
    FOR EACH ROW EXECUTE FUNCTION dls_validity_file();

-- What a cached file serves (its transfer key, size) lives in the artifact row;
-- a use (last_used_at) changes nothing served.
CREATE FUNCTION dls_validity_artifact() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'last_used_at') = (to_jsonb(OLD) - 'last_used_at') THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('dls_validity', 'a:' || OLD.sha256);
    RETURN NULL;
END $$;

CREATE TRIGGER artifacts_validity AFTER UPDATE OR DELETE ON artifacts
    FOR EACH ROW EXECUTE FUNCTION dls_validity_artifact();

-- Login throttling per user name and client address (an IPv6 client by its
-- /64), replacing the per-name counter that anyone could drive up to delay
-- another client's login. `failures` is counted before a password is checked
-- (a success resets the row), so parallel guesses see each other's attempts;
-- `not_before` is the earliest start of the next attempt of this pair.
DROP TABLE login_failures;

CREATE TABLE login_throttle (
    user_name    text NOT NULL,
    client       text NOT NULL,
    failures     integer NOT NULL,
    not_before   timestamptz NOT NULL,
    last_attempt timestamptz NOT NULL,
    PRIMARY KEY (user_name, client)
);
CREATE INDEX login_throttle_last_attempt ON login_throttle (last_attempt);

-- How long the next attempt of a (user, client) pair waits after an attempt
-- that made `failures` failures in a row: nothing for the free ones, then
-- 1 s, 2 s, 4 s ... up to `max_delay` seconds.
CREATE FUNCTION dls_login_delay(failures integer, free integer, max_delay double precision)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN failures < free THEN interval '0'
                  ELSE LEAST(power(2::float8, LEAST(failures - free, 30)), max_delay)
                       * interval '1 second' END $$;
