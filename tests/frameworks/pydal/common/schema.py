"""Create this application's tables in $DATABASE_URL the way web2py does: pydal's own
migrations (migrate=True) on the models in models.py.

rehearse runs it as the schema command (`python schema.py`) against an empty scratch database;
the deployment runs it against the real one.  pydal keeps what it believes each table looks like
in *.table files in a folder: an empty database needs an empty folder (or pydal thinks the tables
exist and creates nothing), so by default this uses a fresh temporary folder.

DATABASE_URL: sqlite:///abs/path.db, or postgres://user[:password]@host[:port]/db.
"""

import argparse
import os
import shutil
import sys
import tempfile

from pydal import DAL

from models import define_tables


def pydal_uri(url):
    """rehearse's URL -> (pydal URI, folder of the database file or None)."""
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]  # sqlite:///abs/path -> /abs/path
        if not path.startswith("/"):
            sys.exit("schema.py: %r is not an absolute sqlite:/// URL" % url)
        return "sqlite://" + path, os.path.dirname(path)
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgres:psycopg2://" + url[len(scheme):], None
    sys.exit("schema.py: unsupported DATABASE_URL scheme in %r" % url.split("://")[0])


def connect(url, folder):
    uri, _ = pydal_uri(url)
    return DAL(uri, folder=folder, migrate=True, fake_migrate=False, pool_size=0, check_reserved=None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", help="where pydal keeps its *.table files (default: a fresh temporary folder)")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("schema.py: DATABASE_URL is not set")
    folder = args.folder or tempfile.mkdtemp(prefix="pydal-tables-")
    try:
        db = connect(url, folder)
        define_tables(db)
        db.commit()
        db.close()
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
