package postgres

// paymentsMigration keeps the issuer's last word on each order's payment
// (DESIGN.md §6.8), as in the SQLite backend.
const paymentsMigration = `
CREATE TABLE payments (
	order_id   TEXT COLLATE "C" PRIMARY KEY REFERENCES orders (order_id),
	state      TEXT   NOT NULL,
	captured   BIGINT NOT NULL CHECK (captured >= 0),
	refunded   BIGINT NOT NULL CHECK (refunded >= 0 AND refunded <= captured),
	hold_until BIGINT NOT NULL DEFAULT 0,
	updated    BIGINT NOT NULL
);`
