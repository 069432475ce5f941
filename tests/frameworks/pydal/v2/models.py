"""The organisation registry's models (a slice of Sahana Eden's org module), version 2:
org_office.phone1 is now phone, offices get a short code (NOT NULL, default 'UNKNOWN'), and an
office email must be unique."""

from pydal import Field


def define_tables(db, migrate=True):
    db.define_table(
        "org_organisation",
        Field("name", length=128, notnull=True),
        Field("acronym", length=16),
        Field("website", length=255),
        migrate=migrate,
    )
    db.define_table(
        "org_office",
        Field("organisation_id", "reference org_organisation"),
        Field("name", length=64, notnull=True),
        Field("phone", length=32),
        Field("email", length=128, unique=True),
        Field("comments", "text"),
        Field("code", length=10, notnull=True, default="UNKNOWN"),
        migrate=migrate,
    )
