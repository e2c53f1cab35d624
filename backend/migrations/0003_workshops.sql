-- Workshops: instructors' sign-in sessions, workshops and their participants.
-- Times are Unix milliseconds (UTC). `owner` names the instructor: today the fingerprint of
-- the admin token (every workshop made with that token), later one per instructor token.

-- A signed-in instructor (the drydock_admin cookie). Only the SHA-256 of the cookie value
-- is kept.
CREATE TABLE admin_sessions (
    id_hash     TEXT PRIMARY KEY NOT NULL,
    owner       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions(expires_at);

CREATE TABLE workshops (
    id                TEXT PRIMARY KEY NOT NULL,
    -- The join code (`/w/{code}`): upper case, unambiguous alphabet.
    code              TEXT NOT NULL UNIQUE,
    owner             TEXT NOT NULL,
    title             TEXT NOT NULL,
    lesson            TEXT NOT NULL,
    lang              TEXT,
    seats             INTEGER NOT NULL,
    -- Length of each participant's session.
    duration_minutes  INTEGER NOT NULL,
    -- Instances kept started in advance for the next participants.
    warm_pool         INTEGER NOT NULL DEFAULT 0,
    -- The join window (NULL: from creation / until ended).
    opens_at          INTEGER,
    closes_at         INTEGER,
    created_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    -- `active` or `ended`.
    state             TEXT NOT NULL
);
CREATE INDEX workshops_owner ON workshops(owner, created_at);
CREATE INDEX workshops_state ON workshops(state);

-- One row per join that made a session (a rejoin from the same browser makes none).
CREATE TABLE workshop_participants (
    workshop_id  TEXT NOT NULL REFERENCES workshops(id) ON DELETE CASCADE,
    session_id   TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (workshop_id, session_id)
);
CREATE UNIQUE INDEX workshop_participants_session ON workshop_participants(session_id);
