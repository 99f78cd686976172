-- The one definition of a download-session lease renewed by activity: the
-- session lives at least `lease_seconds` from now, and never less than it was
-- already promised. Every statement that counts as activity (a use by the
-- owner, bytes served from its endpoints) sets expiration_time through it.
-- A single-SELECT SQL function: the planner inlines it, so it costs nothing.
CREATE FUNCTION session_lease(expiration_time timestamptz, lease_seconds double precision)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT GREATEST(expiration_time, now() + lease_seconds * interval '1 second') $$;
