"""Settings, read from the environment (12-factor).

Two shapes: the *embedded* default (no DATABASE_URL, no broker: SQLite and eager Celery, for
the quick start) and the *production* shape (PostgreSQL + Redis), which refuses to start with
DEBUG on or without a real secret key. Secrets are never given defaults outside embedded mode.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _read_secret(name: str, default: str | None = None) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points to an unreadable file: {exc}") from exc
    return os.environ.get(name, default)


# embedded | production | test. Default: embedded unless a database URL is configured.
GATEWAY_MODE = env.str("GATEWAY_MODE", default="production" if "DATABASE_URL" in os.environ else "embedded")
if GATEWAY_MODE not in {"embedded", "production", "test"}:
    raise ImproperlyConfigured(f"GATEWAY_MODE must be embedded, production or test, not {GATEWAY_MODE!r}")

# Where the gateway keeps its own files (SQLite database, documents, archives, install secrets).
VAR_DIR = Path(env.str("GATEWAY_VAR_DIR", default=str(BASE_DIR / "var")))


def _install_secret(name: str, make: Callable[[], str]) -> str:
    """A random secret of this installation, made on its first start and kept in VAR_DIR/name
    (mode 0600) for the next ones: embedded and test modes only, where no secret is configured.
    Processes starting together agree on one value (the file appears whole, or not at all)."""
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        draft = VAR_DIR / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(make() + "\n")
        try:
            os.link(draft, path)  # atomic; fails if another process made the file first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    value = path.read_text().strip()
    if not value:
        raise ImproperlyConfigured(f"{path} is empty: delete it to have a new secret made.")
    return value


DEBUG = env.bool("DJANGO_DEBUG", default=GATEWAY_MODE == "embedded")
SECRET_KEY = _read_secret("DJANGO_SECRET_KEY") or (
    _install_secret("secret_key", lambda: secrets.token_urlsafe(50)) if GATEWAY_MODE in {"embedded", "test"}
    else None
)
if GATEWAY_MODE == "production":
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off in production mode.")
    if not SECRET_KEY or len(SECRET_KEY) < 40:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set to a random value "
            "of at least 40 characters in production mode."
        )

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS",
    default=["localhost", "127.0.0.1", "[::1]", "testserver"] if GATEWAY_MODE != "production" else [],
)

INSTALLED_APPS = [
    "restitution.apps.GatewayAdminConfig",  # django.contrib.admin with the operator console
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "restitution",
    "connectors_out",
]
# The demo (synthetic legacy systems, `manage.py demo`) is a client of the product: present in
# the quick start and the tests, never in production.
if GATEWAY_MODE in {"embedded", "test"}:
    INSTALLED_APPS += ["demo"]

MIDDLEWARE = [
    "config.health.LivenessMiddleware",
    "restitution.web.middleware.RequestIdMiddleware",
    # The customer's access log: the events a view records are written before its response leaves.
    "restitution.access_log.AccessLogMiddleware",
    "restitution.web.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Personal data is never kept by a browser or proxy cache (after the user is known).
    "restitution.web.middleware.PersonalDataNoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: counts failed logins and locks out.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login protection: lock a username from an address after 5 failures, for 30 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# Reverse proxies in front of the gateway whose X-Forwarded-For entries are believed (0: none, the
# client is the TCP peer). Every use of the client's address goes through one function:
# login lockout, the access log's "from where", DRF's address-keyed throttles.
GATEWAY_TRUSTED_PROXY_COUNT = env.int("GATEWAY_TRUSTED_PROXY_COUNT", default=0)
if GATEWAY_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("GATEWAY_TRUSTED_PROXY_COUNT must be 0 or more.")
AXES_CLIENT_IP_CALLABLE = "restitution.client_address.client_ip"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The gateway's own templates first, so that its admin/base_site.html (the operator
        # console's style) wins over django.contrib.admin's; each destination kind keeps its
        # pages in its own folder (connectors_out/kinds/<kind>/templates/).
        "DIRS": [BASE_DIR / "restitution" / "templates",
                 *sorted(str(p) for p in (BASE_DIR / "connectors_out" / "kinds").glob("*/templates"))],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "restitution.web.context.holder",
            ],
        },
    },
]

if "DATABASE_URL" in os.environ:
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # a fresh clone has no var/ yet
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "gateway.sqlite3",
            "OPTIONS": {"timeout": 30},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env.str("GATEWAY_MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if GATEWAY_MODE == "production" else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/account/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
LOCALE_PATHS = [BASE_DIR / "restitution" / "locale"]

# --- OAuth2 authorization server (django-oauth-toolkit) -----------------------------------
# The authorization server's issuer identifier (RFC 8414 §2, RFC 9207): the metadata, its endpoint
# URLs and the `iss` of authorization responses all come from it, never from the Host header.
# Production: https, no path, query or fragment; defaults to https://<first DJANGO_ALLOWED_HOSTS>.
_default_issuer = ("http://127.0.0.1:8000" if GATEWAY_MODE != "production"
                   else next((f"https://{h}" for h in ALLOWED_HOSTS if h and h[0] not in ".*" and h != "*"), ""))
GATEWAY_ISSUER = env.str("GATEWAY_ISSUER", default=_default_issuer).rstrip("/")
_issuer = urlsplit(GATEWAY_ISSUER)
if (not _issuer.scheme or not _issuer.netloc or _issuer.path or _issuer.query or _issuer.fragment
        or (GATEWAY_MODE == "production" and _issuer.scheme != "https")):
    raise ImproperlyConfigured(
        "GATEWAY_ISSUER must be the gateway's public origin, e.g. https://gateway.example "
        f"(https in production, no path, query or fragment), not {GATEWAY_ISSUER!r}.")
OAUTH2_PROVIDER_APPLICATION_MODEL = "restitution.PimsClient"
OAUTH2_PROVIDER = {
    "OIDC_ISS_ENDPOINT": GATEWAY_ISSUER,
    "OAUTH2_PROTECTED_RESOURCE_IDENTIFIER": GATEWAY_ISSUER,
    # Failed client authentication at the token and revocation endpoints: a Basic challenge.
    "OAUTH2_BACKEND_CLASS": "restitution.oauth.GatewayOAuthLibCore",
    "OAUTH2_VALIDATOR_CLASS": "restitution.oauth.GatewayOAuth2Validator",
    "SCOPES_BACKEND_CLASS": "restitution.oauth.DatasetScopes",
    "PKCE_REQUIRED": True,
    # Authorization code flow only (and refresh): no implicit, password or client-credentials.
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "APPLICATION_ADMIN_CLASS": "restitution.admin.PimsClientAdmin",
    "ACCESS_TOKEN_ADMIN_CLASS": "restitution.admin.GatewayAccessTokenAdmin",
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("OAUTH_ACCESS_TOKEN_SECONDS", default=600),
    # Refresh tokens live as long as the longest grant; the grant's own expiry ends them sooner.
    "REFRESH_TOKEN_EXPIRE_SECONDS": 366 * 24 * 3600,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REQUEST_APPROVAL_PROMPT": "force",
    "ALLOWED_REDIRECT_URI_SCHEMES": env.list("OAUTH_REDIRECT_SCHEMES", default=["https", "http"]
                                             if GATEWAY_MODE != "production" else ["https"]),
    "ALLOW_URI_WILDCARDS": False,
    # Random 128-character secrets need no slow key stretching: one SHA-256 (see hashers.py).
    "CLIENT_SECRET_HASHER": "restitution-client-secret-sha256",
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": GATEWAY_MODE == "production",
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    # RFC 7591 dynamic registration: open, but new clients wait for the operator's approval.
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    # RFC 7592 registration access tokens expire, and each read or update answers a new one.
    "DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS": env.int("OAUTH_REGISTRATION_TOKEN_SECONDS", default=30 * 24 * 3600),
    "DCR_ROTATE_REGISTRATION_TOKEN_ON_UPDATE": True,
}
# Open registration, bounded: requests per client address (DRF rate syntax, 429 beyond) and
# the size of one request's body (restitution/clients.py).
GATEWAY_REGISTRATION_RATE = env.str("OAUTH_REGISTRATION_RATE", default="20/h")
GATEWAY_REGISTRATION_MAX_BYTES = env.int("OAUTH_REGISTRATION_MAX_BYTES", default=16 * 1024)
if not re.fullmatch(r"[1-9][0-9]*/[smhd][a-z]*", GATEWAY_REGISTRATION_RATE):
    raise ImproperlyConfigured(f"OAUTH_REGISTRATION_RATE must read like 20/h, not {GATEWAY_REGISTRATION_RATE!r}")
if OAUTH2_PROVIDER["DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS"] <= 0 or GATEWAY_REGISTRATION_MAX_BYTES <= 0:
    raise ImproperlyConfigured("OAUTH_REGISTRATION_TOKEN_SECONDS and OAUTH_REGISTRATION_MAX_BYTES must be positive.")
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "restitution.hashers.ClientSecretHasher",
]
# Who the holder is, for consent receipts and pages.
GATEWAY_HOLDER_NAME = env.str("GATEWAY_HOLDER_NAME", default="Demo data holder")
GATEWAY_HOLDER_CONTACT = env.str("GATEWAY_HOLDER_CONTACT", default="privacy@holder.example")
# The licence of the published API description (OpenAPI `info.license`, an SPDX identifier); the
# customers' data is theirs and is not covered by it.
GATEWAY_API_LICENSE = env.str("GATEWAY_API_LICENSE", default="CC-BY-4.0")
GATEWAY_API_LICENSE_NAME = env.str("GATEWAY_API_LICENSE_NAME", default="Creative Commons Attribution 4.0")
# The time zone of the customers' calendar: a consent's "from" and "to" dates are whole days there.
GATEWAY_CUSTOMER_TIME_ZONE = env.str("GATEWAY_CUSTOMER_TIME_ZONE", default=TIME_ZONE)

# --- Redis, Celery -------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# With no broker, tasks run eagerly in the calling process (embedded quick start).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=15 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=16 * 60)
# A task unacknowledged this long is redelivered: above the hard time limit, so a slow run
# is never handed to a second worker while the first is still on it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=30 * 60)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"restitution.tasks.run_extraction": {"queue": env.str("EXTRACTION_QUEUE", default="extraction")}}
CELERY_TASK_ROUTES["restitution.tasks.run_extraction_shard"] = CELERY_TASK_ROUTES["restitution.tasks.run_extraction"]
CELERY_TASK_ROUTES["restitution.tasks.build_export"] = {"queue": env.str("EXPORT_QUEUE", default="default")}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- The gateway ---------------------------------------------------------------------------
# How long a per-source concurrency lease lives if its worker dies without releasing it.
GATEWAY_SOURCE_LEASE_SECONDS = env.int("GATEWAY_SOURCE_LEASE_SECONDS", default=20 * 60)
# Rows upserted per database round trip by the extraction pipeline.
GATEWAY_STORE_CHUNK = env.int("GATEWAY_STORE_CHUNK", default=2000)
# A batch run of a source with more customers than this is split into shards of about this many
# customers (restitution/extraction.py); a smaller source stays one run. 0 turns sharding off.
GATEWAY_RUN_SHARD_CUSTOMERS = env.int("GATEWAY_RUN_SHARD_CUSTOMERS", default=5000)
# At most this many shards for a file source's batch run: each reads every file (docs/extraction.md).
GATEWAY_RUN_FILE_SHARDS = env.int("GATEWAY_RUN_FILE_SHARDS", default=8)
# Where `manage.py demo` writes the synthetic legacy systems.
GATEWAY_DEMO_DIR = Path(env.str("GATEWAY_DEMO_DIR", default=str(VAR_DIR / "demo")))

# --- Archives (exports) --------------------------------------------------------------------
# Download links expire after this many seconds (signed, no token needed while valid).
GATEWAY_EXPORT_LINK_SECONDS = env.int("GATEWAY_EXPORT_LINK_SECONDS", default=6 * 3600)
# Archives are deleted this many days after they are ready (the job row stays, as history).
GATEWAY_EXPORT_RETENTION_DAYS = env.float("GATEWAY_EXPORT_RETENTION_DAYS", default=7)
# Where archives are written: "default" (local files under MEDIA_ROOT) or "s3" (django-storages,
# S3-compatible; configure it with the AWS_* variables it reads).
GATEWAY_EXPORT_STORAGE = env.str("GATEWAY_EXPORT_STORAGE", default="default")
if GATEWAY_EXPORT_LINK_SECONDS <= 0 or GATEWAY_EXPORT_RETENTION_DAYS <= 0:
    raise ImproperlyConfigured("GATEWAY_EXPORT_LINK_SECONDS and GATEWAY_EXPORT_RETENTION_DAYS must be positive.")
if GATEWAY_EXPORT_STORAGE == "s3":
    STORAGES["exports"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": env.str("GATEWAY_EXPORT_BUCKET"), "default_acl": "private", "querystring_auth": True,
        "location": env.str("GATEWAY_EXPORT_PREFIX", default="exports")}}
elif GATEWAY_EXPORT_STORAGE == "default":
    STORAGES["exports"] = STORAGES["default"]
else:
    raise ImproperlyConfigured(f"GATEWAY_EXPORT_STORAGE must be default or s3, not {GATEWAY_EXPORT_STORAGE!r}")
# --- Push to personal clouds and signed webhooks (connectors_out) ---------------------------
# Fernet keys encrypting credentials at rest: the first encrypts, all decrypt (docs/connectors.md).
GATEWAY_ENCRYPTION_KEYS = [k.strip() for k in (_read_secret("GATEWAY_ENCRYPTION_KEYS") or "").split(",") if k.strip()]
if not GATEWAY_ENCRYPTION_KEYS and GATEWAY_MODE in {"embedded", "test"}:
    # This installation's own random key (production requires the variable: crypto.py).
    from cryptography.fernet import Fernet

    GATEWAY_ENCRYPTION_KEYS = [_install_secret("encryption_key", lambda: Fernet.generate_key().decode())]
# Ed25519 seeds (base64url, 32 bytes) signing the head of a customer's downloaded history: the
# first signs, all are published at /.well-known/restitution-history-keys. None: one derived from
# the secret key (restitution/crypto.py, docs/history.md).
GATEWAY_HISTORY_SIGNING_KEYS = [k.strip() for k in (_read_secret("GATEWAY_HISTORY_SIGNING_KEYS") or "").split(",")
                                if k.strip()]
# Attempts of one delivery before a transient failure becomes final; backoff base·2^n, capped
# below the broker's visibility timeout, with jitter.
CONNECTORS_MAX_ATTEMPTS = env.int("CONNECTORS_MAX_ATTEMPTS", default=8)
CONNECTORS_RETRY_BASE_SECONDS = env.float("CONNECTORS_RETRY_BASE_SECONDS", default=30.0)
CONNECTORS_RETRY_CAP_SECONDS = env.float("CONNECTORS_RETRY_CAP_SECONDS", default=20 * 60.0)
CONNECTORS_HTTP_TIMEOUT = env.float("CONNECTORS_HTTP_TIMEOUT", default=30.0)
# A queued delivery untouched this long lost its broker message: the scheduled sweep sends it
# again (above the longest backoff, 1.5 x the cap, so a delivery waiting out a retry is left alone).
CONNECTORS_SWEEP_AFTER_SECONDS = env.float("CONNECTORS_SWEEP_AFTER_SECONDS", default=60 * 60.0)
# Destinations on loopback/private addresses or over plain http (refused in production: SSRF).
CONNECTORS_ALLOW_LOCAL_DESTINATIONS = env.bool("CONNECTORS_ALLOW_LOCAL_DESTINATIONS",
                                               default=GATEWAY_MODE != "production")
# Destination kinds beyond connectors_out.registry.KINDS, name -> dotted path of a Kind (none in
# the product; the tests add a local-folder kind here).
CONNECTORS_EXTRA_KINDS: dict[str, str] = {}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["restitution.api.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies with limits on size and nesting (a deeply nested body is a 400, not a 500).
    "DEFAULT_PARSER_CLASSES": ["restitution.api.parsers.LimitedJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "EXCEPTION_HANDLER": "restitution.api.problems.exception_handler",
    # Defaults after Australia's CDR traffic thresholds; per customer and per client.
    "DEFAULT_THROTTLE_RATES": {
        "customer": env.str("API_RATE_PER_CUSTOMER", default="10/s"),
        "client": env.str("API_RATE_PER_CLIENT", default="50/s"),
        # Documents (PDFs) are counted apart from the other calls, with budgets of their own.
        "customer_documents": env.str("API_DOCUMENT_RATE_PER_CUSTOMER", default="5/s"),
        "client_documents": env.str("API_DOCUMENT_RATE_PER_CLIENT", default="25/s"),
    },
    "UNAUTHENTICATED_USER": None,
    # DRF's own address key (SimpleRateThrottle.get_ident) with the same trusted proxies: without
    # it, DRF would key on a client-sent X-Forwarded-For.
    "NUM_PROXIES": GATEWAY_TRUSTED_PROXY_COUNT,
}
# Rate-limit counters must be shared by every web process: Redis when there is one.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
         "KEY_PREFIX": "restitution",
         # A Redis that hangs must not hang requests: the throttles fail open (see throttling.py).
         "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
        if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
    ),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Restitution gateway — portability API",
    "DESCRIPTION": "Your customers' own data, with their consent: datasets, records, changes, documents. "
    "OAuth 2.0 bearer tokens, one scope per dataset (`dataset:<slug>`). Errors are RFC 9457 problems.",
    # The API's version (semantic versioning): 1.1.0 added `document_url` to a record's item; 1.2.0
    # added the `date` of a tombstone, the `formats` of a dataset and Green Button ESPI XML; 1.3.0
    # dates the records of a dataset of days by their local day (`"date": "2025-01-31"`), with the
    # dataset's `date_field` and `date_time_zone`, and reads `from`/`to` days as local days.
    "VERSION": "1.3.0",
    # OpenAPI 3.1: its schema dialect is JSON Schema 2020-12, the dialect of the dataset schemas.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "restitution.api.schema.add_security_and_datasets"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # httpx logs every URL at INFO: legacy URLs carry customer identifiers, so keep it quiet.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
                "httpcore": {"level": "WARNING"}},
}

if GATEWAY_MODE == "production":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Operations: readiness, metrics, logs, security headers, customer login, retention --------
INSTALLED_APPS += ["django_prometheus", "csp"]
# Prometheus timing wraps everything; CSP headers after the security middleware; the API call
# recorder sits inside the access log, whose statement may carry its row (restitution/access_log.py).
MIDDLEWARE.insert(0, "django_prometheus.middleware.PrometheusBeforeMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                  "csp.middleware.CSPMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("restitution.access_log.AccessLogMiddleware") + 1,
                  "restitution.observability.ApiMetricsMiddleware")
MIDDLEWARE.append("django_prometheus.middleware.PrometheusAfterMiddleware")

# Old secret keys still accepted for sessions and signed values while a new one takes over.
SECRET_KEY_FALLBACKS = [key for key in env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[]) if key]

# Bearer token for /metrics and the operator metrics API (besides staff sessions); unset = staff only.
GATEWAY_METRICS_TOKEN = _read_secret("GATEWAY_METRICS_TOKEN") or ""
# Record one ApiCall row per API/OAuth2 call (the operator metrics read them).
GATEWAY_RECORD_API_CALLS = env.bool("GATEWAY_RECORD_API_CALLS", default=True)
# Response time a call must beat to count as performing, per tier (CDR non-functional requirements).
GATEWAY_TIER_THRESHOLDS_MS = {
    "unauthenticated": env.int("GATEWAY_THRESHOLD_UNAUTHENTICATED_MS", default=1500),
    "authentication": env.int("GATEWAY_THRESHOLD_AUTHENTICATION_MS", default=1500),
    "high-priority": env.int("GATEWAY_THRESHOLD_HIGH_PRIORITY_MS", default=1000),
    "large-payload": env.int("GATEWAY_THRESHOLD_LARGE_PAYLOAD_MS", default=6000),
}
# A consent flow idle this long without reaching a token counts as abandoned.
GATEWAY_CONSENT_FLOW_TIMEOUT = env.int("GATEWAY_CONSENT_FLOW_TIMEOUT", default=600)
# Consent flows an anonymous visitor may start per IP address and hour (each is a row and a
# session); beyond that the login page is still shown, but nothing is written.
GATEWAY_CONSENT_FLOWS_PER_IP_HOUR = env.int("GATEWAY_CONSENT_FLOWS_PER_IP_HOUR", default=30)
# /readyz and /metrics are probed over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^readyz$", r"^metrics$"]

# Logs: one JSON object per line (plain text in the embedded quick start), each with the request
# id of the request or task it belongs to; credentials are redacted before formatting.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if GATEWAY_MODE == "embedded" else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING["filters"] = {"request_id": {"()": "restitution.observability.RequestIdFilter"}}
LOGGING["formatters"]["json"] = {
    "()": "restitution.observability.JsonFormatter",
    "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
    "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
}
LOGGING["formatters"]["plain"]["format"] = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
LOGGING["handlers"]["console"].update({"formatter": LOG_FORMAT, "filters": ["request_id"]})
# oauthlib logs request bodies (codes, verifiers, tokens) at DEBUG: never below WARNING.
LOGGING["loggers"].update({"oauthlib": {"level": "WARNING"}, "oauth2_provider": {"level": "INFO"},
                           "mozilla_django_oidc": {"level": "INFO"}})
# The development server's request log (`runserver`, `demo_serve`) prints each request line with
# its query string (signed archive links, tokens): through the same handler, so redacted too.
LOGGING["loggers"]["django.server"] = {"handlers": ["console"], "level": "INFO", "propagate": False}
# Workers log through the same handlers (and so the same format and request id).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Content Security Policy (django-csp): nothing from other origins; inline scripts only with
# the response's nonce. Inline styles stay allowed for the API docs (Swagger UI and Redoc set
# styles from JavaScript); their assets are served from here (drf-spectacular-sidecar).
INSTALLED_APPS += ["drf_spectacular_sidecar"]
SPECTACULAR_SETTINGS.update({"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
                             "REDOC_DIST": "SIDECAR"})
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "frame-ancestors": [NONE],
        "form-action": [SELF, *env.list("CSP_FORM_ACTION", default=["https:"] if GATEWAY_MODE == "production"
                                        else ["https:", "http:"])],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}

# Retention (retention.py, nightly): days before the records of a customer with no active grant,
# access events, and the operator's call and consent-flow rows are purged; 0 keeps them forever.
GATEWAY_RECORD_RETENTION_DAYS = env.int("GATEWAY_RECORD_RETENTION_DAYS", default=90)
GATEWAY_ACCESS_EVENT_RETENTION_DAYS = env.int("GATEWAY_ACCESS_EVENT_RETENTION_DAYS", default=3 * 365)
GATEWAY_API_CALL_RETENTION_DAYS = env.int("GATEWAY_API_CALL_RETENTION_DAYS", default=400)

# Customer login through the holder's OpenID Connect provider (restitution/oidc.py): on when the
# client id and the provider's endpoints are set. Local accounts keep working beside it.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = _read_secret("OIDC_RP_CLIENT_SECRET") or ""
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT", default=10)
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?oidc=failed"
# Which claim names the customer, and which legacy system's identities it is matched against.
GATEWAY_OIDC_CUSTOMER_CLAIM = env.str("GATEWAY_OIDC_CUSTOMER_CLAIM", default="member_number")
GATEWAY_OIDC_IDENTITY_SYSTEM = env.str("GATEWAY_OIDC_IDENTITY_SYSTEM", default="insurer")
AUTHENTICATION_BACKENDS.append("restitution.oidc.HolderOIDCBackend")
