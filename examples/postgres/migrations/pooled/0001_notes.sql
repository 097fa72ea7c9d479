-- Pooled tables: every row names its tenant; row-level security does the rest.
CREATE TABLE notes (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    body text NOT NULL
);
CREATE INDEX notes_tenant ON notes (tenant_id);
