"""Test fixture (not part of the application): realistic rows for the live database, written
through the v1 models with Django's ORM.  `python seed.py clean|duplicates` with the v1 checkout
on PYTHONPATH and DATABASE_URL set to live."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stockroom.settings")
import django  # noqa: E402

django.setup()
from inventory.models import Item, Supplier  # noqa: E402

variant = sys.argv[1]
assert variant in ("clean", "duplicates"), variant
acme = Supplier.objects.create(name="ACME Tools", phone="+44 20 7946 0000")
northwind = Supplier.objects.create(name="Northwind Tr\u00e4ders", phone="")
items = [
    (acme, "HAM-001", "Claw hammer, 16 oz", 40),
    (acme, "SCR-010", "Screwdriver set (6)", 12),
    (acme, "TAP-100", "Measuring tape 5 m", 0),
    (northwind, "GLV-M", "Work gloves \u2013 medium", 120),
    (northwind, "GLV-L", "Work gloves \u2013 large", 95),
    (None, "MISC-1", "Odds and ends 'as found'", 1),
]
if variant == "duplicates":
    # Re-used stock numbers: two large gloves entered under the medium SKU, the tape twice.
    items[4] = (northwind, "GLV-M", "Work gloves \u2013 large", 95)
    items.append((acme, "TAP-100", "Measuring tape 5 m (new batch)", 7))
for supplier, sku, title, quantity in items:
    Item.objects.create(supplier=supplier, sku=sku, title=title, quantity=quantity)
