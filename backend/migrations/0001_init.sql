-- Drydock server store: sessions, their instances, and an event log.
-- Times are Unix milliseconds (UTC).
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    token_hash  TEXT NOT NULL,
    template    TEXT NOT NULL,
    lesson      TEXT,
    lang        TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT NOT NULL
);
CREATE INDEX sessions_state ON sessions(state);

CREATE TABLE instances (
    session_id    TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    container_id  TEXT,
    agent_addr    TEXT,
    agent_secret  TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (session_id, name)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX events_session ON events(session_id, at);
