"""Test fixture (not part of the application): realistic rows for the live database, inserted
through the application's own models with pydal.  `python seed.py clean|duplicates` in a checkout
of v1, with DATABASE_URL set to live and --folder the folder schema.py migrated it with."""

import argparse
import os

from models import define_tables
from schema import connect

parser = argparse.ArgumentParser()
parser.add_argument("variant", choices=["clean", "duplicates"])
parser.add_argument("--folder", required=True)
args = parser.parse_args()

db = connect(os.environ["DATABASE_URL"], args.folder)
define_tables(db)
red_cross = db.org_organisation.insert(name="Red Cross Society", acronym="RCS", website="https://rcs.example.org")
shelter = db.org_organisation.insert(name="Shelter Alliance", acronym=None, website=None)
offices = [
    (red_cross, "Head Office", "+41 22 730 42 22", "hq@rcs.example.org", "Main building"),
    (red_cross, "Warehouse North", "+41 22 730 42 30", "north@rcs.example.org", None),
    (red_cross, "Warehouse South", None, "south@rcs.example.org", "Opens 8-16 \u2013 ask for Zo\u00eb"),
    (shelter, "Field Office O'Brien", "555-0101", "field@shelter.example.org", None),
    (shelter, "Mobile Unit", None, None, None),
]
if args.variant == "duplicates":
    # Two offices share a mailbox (and one pair twice): the new unique key on email meets 2 groups.
    offices[1] = offices[1][:3] + ("hq@rcs.example.org",) + offices[1][4:]
    offices[2] = offices[2][:3] + ("hq@rcs.example.org",) + offices[2][4:]
    offices[4] = offices[4][:3] + ("field@shelter.example.org",) + offices[4][4:]
for org, name, phone, email, comments in offices:
    db.org_office.insert(organisation_id=org, name=name, phone1=phone, email=email, comments=comments)
db.commit()
db.close()
