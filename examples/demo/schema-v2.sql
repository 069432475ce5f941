-- Eden v2: what the new code expects.
--   org_organisation.name_l10n is now local_name (same data)
--   org_office gains a NOT NULL code (the developers give a backfill in upgrade-hints.yaml)
--   org_office.fax is gone
--   pr_person.email must be unique
CREATE TABLE org_organisation (
  id INTEGER PRIMARY KEY,
  name VARCHAR(128) NOT NULL,
  acronym VARCHAR(16),
  local_name VARCHAR(128)
);
CREATE TABLE org_office (
  id INTEGER PRIMARY KEY,
  organisation_id INTEGER REFERENCES org_organisation (id),
  name VARCHAR(64) NOT NULL,
  code VARCHAR(16) NOT NULL,
  phone VARCHAR(32)
);
CREATE INDEX org_office_organisation ON org_office (organisation_id);
CREATE TABLE pr_person (
  id INTEGER PRIMARY KEY,
  first_name VARCHAR(64) NOT NULL,
  last_name VARCHAR(64),
  email VARCHAR(128) UNIQUE
);
CREATE TABLE hrm_staff (
  id INTEGER PRIMARY KEY,
  person_id INTEGER NOT NULL REFERENCES pr_person (id),
  office_id INTEGER REFERENCES org_office (id),
  start_date DATE
);
CREATE TABLE project_project (
  id INTEGER PRIMARY KEY,
  organisation_id INTEGER REFERENCES org_organisation (id),
  name VARCHAR(128) NOT NULL,
  budget INTEGER
);
