package sqlite

// Assisted sessions (DESIGN.md §6.7): one row per consultant login. The
// second identifier itself is never stored, only its hash; at most one
// session per consultant and device is open at a time.
const assistedMigration = `
CREATE TABLE assisted_sessions (
	session_id  TEXT PRIMARY KEY,
	consultant  TEXT NOT NULL,
	company     TEXT NOT NULL,
	device      TEXT NOT NULL,
	secret_hash BLOB NOT NULL,
	login_nonce TEXT NOT NULL UNIQUE,  -- a login request is good once
	created     INTEGER NOT NULL,
	expires     INTEGER NOT NULL,      -- the shift's end
	ended       INTEGER,               -- logout or a later login on the device
	end_reason  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX assisted_open ON assisted_sessions (consultant, device) WHERE ended IS NULL;
CREATE INDEX assisted_consultant ON assisted_sessions (consultant, created);
ALTER TABLE orders ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
CREATE INDEX orders_session ON orders (session_id, created) WHERE session_id != '';
`

// deviceKeyMigration binds each session to its terminal's device public
// key (issue 16 item 8). Sessions opened before it have none and prove
// nothing: a shift is at most a day.
const deviceKeyMigration = `
ALTER TABLE assisted_sessions ADD COLUMN device_key BLOB NOT NULL DEFAULT x'';
`
