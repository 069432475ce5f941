"""Settings of the stockroom project: the database comes from $DATABASE_URL."""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "stockroom-not-secret-outside-production")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["inventory"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"


def database_from_url(url):
    """sqlite:///abs/path.db or postgres://user[:password]@host[:port]/db -> a DATABASES entry.
    Parsed here rather than with a helper package: two schemes are all this project uses."""
    if url.startswith("sqlite://"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url[len("sqlite://"):]}
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError("DATABASE_URL: unsupported scheme %r" % parts.scheme)


DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", "sqlite:///" + str(BASE_DIR / "db.sqlite3")))}
