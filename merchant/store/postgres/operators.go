package postgres

// Dashboard operators and their sessions (DESIGN.md §10), shared by every
// node on the database: a session opened on one node is good on the others,
// and a lockout counts the failures on all of them. A session row holds the
// SHA-256 of its cookie's token, never the token.
const operatorsMigration = `
CREATE TABLE operators (
	name          TEXT   COLLATE "C" PRIMARY KEY,
	role          TEXT   NOT NULL CHECK (role IN ('viewer', 'admin')),
	password_hash TEXT   NOT NULL,    -- argon2id, PHC form, with its parameters
	failures      INT    NOT NULL DEFAULT 0,
	locked_until  BIGINT NOT NULL DEFAULT 0,
	created       BIGINT NOT NULL,
	last_login    BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE operator_logins (
	token_sha256 BYTEA  PRIMARY KEY,
	operator     TEXT   COLLATE "C" NOT NULL,
	created      BIGINT NOT NULL,
	expires      BIGINT NOT NULL
);
CREATE INDEX operator_logins_operator ON operator_logins (operator);
`
