-- Database setup for the compose stack (docker/compose.yaml). The postgres image runs this once,
-- when its data volume is empty, as POSTGRES_USER ("app", the table owner) in POSTGRES_DB ("app").
-- It is also the least-privilege setup of docs/operations.md, "PostgreSQL setup".
\set ON_ERROR_STOP on

-- The outbox table, in the shape of Debezium's outbox event router (the relay's defaults).
CREATE TABLE public.outbox (
    id            uuid        PRIMARY KEY,
    aggregatetype text        NOT NULL,
    aggregateid   text        NOT NULL,
    type          text        NOT NULL,
    payload       jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Creating a publication needs ownership of its tables, so the owner creates it
-- (the relay runs with postgres.create_publication: false). Inserts are all the relay reads.
CREATE PUBLICATION outbox_relay FOR TABLE public.outbox WITH (publish = 'insert');

-- The relay's role: LOGIN and REPLICATION (to create the slot and stream from it), nothing else.
-- No grant on the table is needed: pgoutput sends the rows without checking table privileges,
-- and the catalogs the relay reads (pg_class, pg_publication, pg_replication_slots) are public.
-- The password is the compose secret that the relay reads too (psql runs the backquoted command).
\set relay_password `cat /run/secrets/pg-password`
CREATE ROLE outbox_relay WITH LOGIN REPLICATION PASSWORD :'relay_password';
\unset relay_password
