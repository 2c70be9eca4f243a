package sqlite

// dataMigrations build a data store (primary or backup).
var dataMigrations = []string{
	`CREATE TABLE records (
		token   TEXT PRIMARY KEY,
		dedupe  BLOB NOT NULL,
		nonce   BLOB NOT NULL,
		ct      BLOB NOT NULL,
		created INTEGER NOT NULL -- unix nanoseconds
	) STRICT;
	CREATE INDEX records_dedupe ON records(dedupe);
	CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) STRICT;`,
	// 2: the orphan sweep reads records by age.
	`CREATE INDEX records_created ON records(created);`,
}

// pendingMigrations build the pending file: records waiting for a data store.
var pendingMigrations = []string{
	`CREATE TABLE pending (
		token    TEXT PRIMARY KEY,
		dedupe   BLOB NOT NULL,
		nonce    BLOB NOT NULL,
		ct       BLOB NOT NULL,
		created  INTEGER NOT NULL, -- unix nanoseconds; also the queue order
		attempts INTEGER NOT NULL DEFAULT 0
	) STRICT;
	CREATE INDEX pending_dedupe ON pending(dedupe);
	CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) STRICT;`,
	// 2: the orphan sweep reads records by age.
	`CREATE INDEX pending_created ON pending(created);`,
}
