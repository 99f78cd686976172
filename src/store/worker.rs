//! Worker claims, heartbeats and fenced writes (filled by the prepare pipeline).
