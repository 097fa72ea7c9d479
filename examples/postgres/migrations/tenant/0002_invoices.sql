CREATE TABLE invoices (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    cents bigint NOT NULL CHECK (cents >= 0)
);
