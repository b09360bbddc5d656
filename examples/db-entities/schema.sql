-- examples/db-entities/schema.sql: a BlueMind-like schema, reduced to what the example kinds
-- of examples/db-entities/bmbackup.toml use. BlueMind keeps calendars and address books as
-- containers owned by a directory entry (the user); each event or contact is a container item
-- with its iCalendar or vCard text. tests/db_entity_pg.rs loads this file into a real
-- PostgreSQL, dumps it, backs it up and restores alice's calendar with those kinds.

-- Users (and other directory entries) of each domain.
CREATE TABLE t_directory_entry (
    uid         text PRIMARY KEY,
    domain_uid  text NOT NULL,
    login       text NOT NULL,           -- the local part of login@domain
    displayname text,
    UNIQUE (domain_uid, login)
);

-- A calendar or an address book.
CREATE TABLE t_container (
    id             serial PRIMARY KEY,
    uid            text NOT NULL UNIQUE,  -- e.g. calendar:Default:<user uid>
    container_type text NOT NULL CHECK (container_type IN ('calendar', 'addressbook')),
    name           text NOT NULL,
    owner          text NOT NULL,         -- t_directory_entry.uid
    domain_uid     text NOT NULL
);

-- One event or contact of a container.
CREATE TABLE t_container_item (
    id           bigserial PRIMARY KEY,
    container_id integer NOT NULL REFERENCES t_container (id) ON DELETE CASCADE,
    uid          text NOT NULL,          -- the iCalendar / vCard UID
    version      bigint NOT NULL DEFAULT 1,
    displayname  text,
    created      timestamptz NOT NULL DEFAULT now(),
    updated      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (container_id, uid)
);

-- An event's iCalendar text (a VCALENDAR with its VEVENT and VTIMEZONEs).
CREATE TABLE t_calendar_vevent (
    item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE,
    ics     text NOT NULL
);

-- A contact's vCard text.
CREATE TABLE t_addressbook_vcard (
    item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE,
    vcard   text NOT NULL
);
