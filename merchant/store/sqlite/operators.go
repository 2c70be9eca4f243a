package sqlite

// Dashboard operators and their sessions (DESIGN.md §10). A session row
// holds the SHA-256 of its cookie's token, never the token.
const operatorsMigration = `
CREATE TABLE operators (
	name          TEXT PRIMARY KEY,
	role          TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
	password_hash TEXT NOT NULL,      -- argon2id, PHC form, with its parameters
	failures      INTEGER NOT NULL DEFAULT 0,
	locked_until  INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL,
	last_login    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE operator_logins (
	token_sha256 BLOB PRIMARY KEY,
	operator     TEXT NOT NULL,
	created      INTEGER NOT NULL,
	expires      INTEGER NOT NULL
);
CREATE INDEX operator_logins_operator ON operator_logins (operator);
`
