package sqlite

// paymentsMigration keeps the issuer's last word on each order's payment
// (DESIGN.md §6.8).
const paymentsMigration = `
CREATE TABLE payments (
	order_id   TEXT PRIMARY KEY REFERENCES orders (order_id),
	state      TEXT NOT NULL,
	captured   INTEGER NOT NULL CHECK (captured >= 0),
	refunded   INTEGER NOT NULL CHECK (refunded >= 0 AND refunded <= captured),
	hold_until INTEGER NOT NULL DEFAULT 0, -- unix ms; 0: unknown
	updated    INTEGER NOT NULL
);`
