-- Lesson progress: one row per session and step (counting from 0) that was checked.
-- A passed step keeps its first pass; until then each check replaces the row.
-- checked_at is Unix milliseconds (UTC).
CREATE TABLE lesson_progress (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    passed      INTEGER NOT NULL,
    message     TEXT NOT NULL,
    checked_at  INTEGER NOT NULL,
    PRIMARY KEY (session_id, step)
);
