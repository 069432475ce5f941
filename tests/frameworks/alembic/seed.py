"""Test fixture (not part of the application): realistic rows for the live database, written
through the v1 models with SQLAlchemy's ORM.  `python seed.py clean|nulls` with the v1 checkout
on PYTHONPATH and DATABASE_URL set to live."""

import os
import sys

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from helpdesk.models import Customer, Ticket

variant = sys.argv[1]
assert variant in ("clean", "nulls"), variant
url = os.environ["DATABASE_URL"]
if url.startswith("sqlite://"):
    url = "sqlite:///" + url[len("sqlite://"):]
else:
    url = "postgresql+psycopg2://" + url.split("://", 1)[1]
engine = create_engine(url)
with Session(engine) as s:
    customers = [
        Customer(name="Ada Lovelace", email="ada@example.org"),
        Customer(name="Jos\u00e9 Mart\u00ed", email="jose@example.org"),
        Customer(name="Walk-in customer", email="desk@example.org"),
        Customer(name="O'Hara & Sons", email="billing@ohara.example"),
    ]
    if variant == "nulls":
        # Customers who phoned in: nobody took an address. The new NOT NULL meets 2 NULLs.
        customers[1].email = None
        customers[2].email = None
    s.add_all(customers)
    s.flush()
    s.add_all(
        [
            Ticket(customer_id=customers[0].id, subject="Printer on fire", body="Again.\nSee #12.", state="open"),
            Ticket(customer_id=customers[0].id, subject="Password reset", body=None, state="closed"),
            Ticket(customer_id=customers[1].id, subject="Factura duplicada", body="Dos cargos el 3/5", state="open"),
            Ticket(customer_id=customers[3].id, subject="Quote 'urgent'", body="", state="waiting"),
        ]
    )
    s.commit()
