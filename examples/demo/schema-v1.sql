-- Eden v1: the schema running on the live server.
CREATE TABLE org_organisation (
  id INTEGER PRIMARY KEY,
  name VARCHAR(128) NOT NULL,
  acronym VARCHAR(16),
  name_l10n VARCHAR(128)
);
CREATE TABLE org_office (
  id INTEGER PRIMARY KEY,
  organisation_id INTEGER REFERENCES org_organisation (id),
  name VARCHAR(64) NOT NULL,
  phone VARCHAR(32),
  fax VARCHAR(32)
);
CREATE INDEX org_office_organisation ON org_office (organisation_id);
CREATE TABLE pr_person (
  id INTEGER PRIMARY KEY,
  first_name VARCHAR(64) NOT NULL,
  last_name VARCHAR(64),
  email VARCHAR(128)
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
