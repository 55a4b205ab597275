"""Settings for the Partner Access Portal.

One file, driven by the environment (see `.env.example` for every variable). The defaults run
the whole product embedded on one machine: SQLite, a filesystem Celery broker and cloudsim on
loopback. Production sets DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY, ALLOWED_HOSTS and the
Alibaba Cloud endpoints.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu.entity import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# Everything the embedded mode writes (SQLite, broker queue, mail, cloudsim state) lives here.
DATA_DIR = Path(env.str("PORTAL_DATA_DIR", default=str(BASE_DIR / "var")))

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-only-key-never-use-in-production")
else:
    SECRET_KEY = env.str("SECRET_KEY")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # The app-free kit: its template tags (`portal_time`: times in the person's zone).
    "core",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "accounts",
    "audit",
    "delegations",
    "auditor",
    "demo",
    # The REST API: DRF, its OpenAPI schema and the docs' assets served locally.
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.security_headers.SecurityHeadersMiddleware",
    # Only the step-up pages in front of Open console: their form may end on the sign-in host.
    "delegations.partner.middleware.ConsoleStepUpFormActionMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.request_id.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware: the browser's language cookie, else
    # Accept-Language. A signed-in person's own choice wins, below.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in person's language and time zone (accounts.User.language / .time_zone).
    "accounts.middleware.PersonLocaleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "accounts.middleware.CurrentOrganisationMiddleware",
    "accounts.middleware.AdminMfaRequiredMiddleware",
    "auditor.middleware.AuditorReadOnlyMiddleware",
    "portal.errors.AuditFailureMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
                "accounts.context_processors.accounts",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the timeout rides out the
    # short write locks the worker and beat take.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
# Kept across requests: a new connection costs a round of authentication (PostgreSQL) or a
# fresh read of the schema (SQLite) on every request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Rate limits (allauth's sign-in limits and the portal's own) count in this cache, so with
# several web processes it must be one they share: Redis in production. The default,
# per-process memory, suits the embedded single-process web server.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# --- Languages and time zones ----------------------------------------------------------------
# English and Simplified Chinese. The signed-in person's choice (their profile) wins, then the
# browser's language cookie (the header switcher sets it), then Accept-Language.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# One catalogue at the repository root: `make messages` writes it, `compilemessages` builds it
# (make run, the test session, CI and the Docker build; no .mo in git).
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "portal_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Stored times and every export are UTC; pages show the person's own zone (User.time_zone).
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Request size limits: forms here are small; anything larger is an attack or a mistake.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# --- Security -------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# The language cookie (the header switcher) follows the session cookie's rules.
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "portal.errors.csrf_failure"
# Error reports (the DEBUG page, the 500 email) hide what views mark sensitive, DEBUG or not,
# and pass through the log redactors.
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.error_reports.SecretSafeReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "core.error_reports.RedactingExceptionReporter"
# Scripts only from our own static files: no inline script anywhere (a test scans every
# template). Styles still allow inline `style` attributes, which the templates use for layout.
# img data: is the TOTP enrolment QR code; frame-ancestors repeats X_FRAME_OPTIONS for
# browsers that follow only CSP.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Powerful browser features the portal never uses, switched off for every page and frame.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}

# --- Email ----------------------------------------------------------------------------------
# Embedded default: every message is written to DATA_DIR/mail, and /dev/mail shows them.
EMAIL_MAIL_DIR = DATA_DIR / "mail"
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    # Set directly: django-environ drops the leading "/" of an absolute filemail:// path.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(EMAIL_MAIL_DIR)
if EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":
    # Django's, with connections a send's deadline can cut (notifications.sending).
    EMAIL_BACKEND = "core.mail.EmailBackend"
# How long the worker holds a notification it is sending (notifications.sending): past it, the
# dispatcher hands the notification to another worker. Each email or chat post is sent under a
# claim renewed just before it and is cut off after half the claim, so a second worker never
# sends it too.
PORTAL_NOTIFICATION_CLAIM_SECONDS = 120


def _well_within_the_claim(name: str, seconds: float) -> float:
    """A server's timeout for one wait, refused unless a send that waits it out once still
    ends well within its budget (half the claim)."""
    if not 0 < seconds <= PORTAL_NOTIFICATION_CLAIM_SECONDS / 4:
        raise ImproperlyConfigured(
            f"{name} must be above 0 and at most a quarter of the notification claim "
            f"({PORTAL_NOTIFICATION_CLAIM_SECONDS / 4:g} s), so one send cannot outlast it; "
            f"it is {seconds:g}."
        )
    return seconds


# Seconds the mail server may keep the worker waiting, on connecting and on each answer (Django's
# SMTP backend; without it one stalled server blocks for good). A whole send is cut off after
# half the claim whatever the server does; this keeps one stalled wait within that.
EMAIL_TIMEOUT = _well_within_the_claim("EMAIL_TIMEOUT", env.float("EMAIL_TIMEOUT", default=10.0))
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="Partner Access Portal <noreply@localhost>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- allauth --------------------------------------------------------------------------------
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": env.str("PORTAL_LOGIN_FAILED_RATE", default="10/m/ip,5/5m/key"),
    "login": "30/m/ip",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
}
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
# allauth's default, stated here because the lapse of unconfirmed sign-ups below builds on it.
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
# A sign-up whose founder has not confirmed their email after this many days is removed by beat
# (accounts.tasks), with the founder's account: it must not hold its account UID, unique per
# kind, for good. At least as long as a confirmation link lives, so a founder is never cut off
# while theirs still works.
PORTAL_UNCONFIRMED_SIGNUP_DAYS = env.int("PORTAL_UNCONFIRMED_SIGNUP_DAYS", default=7)
if PORTAL_UNCONFIRMED_SIGNUP_DAYS < ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS:
    raise ValueError(
        "PORTAL_UNCONFIRMED_SIGNUP_DAYS must be at least ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS "
        f"({ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS})."
    )
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Partner Access Portal] "
# The scheme of the links in allauth's emails (`make run` serves plain http with DEBUG off).
ACCOUNT_DEFAULT_HTTP_PROTOCOL = env.str(
    "ACCOUNT_DEFAULT_HTTP_PROTOCOL", default="http" if DEBUG else "https"
)
ACCOUNT_ADAPTER = "accounts.adapters.PortalAccountAdapter"
# Reverse proxies of our own in front of the portal (0: clients connect directly). The client
# IP is then the n-th X-Forwarded-For entry from the right (`portal/client_ip.py`), for the
# audit log and every rate limit. allauth reads it through PortalAccountAdapter.get_client_ip;
# its own setting gets the same value so nothing in allauth can disagree.
PORTAL_TRUSTED_PROXY_COUNT = env.int("PORTAL_TRUSTED_PROXY_COUNT", default=0)
if PORTAL_TRUSTED_PROXY_COUNT < 0:
    raise ValueError("PORTAL_TRUSTED_PROXY_COUNT must be 0 or more.")
ALLAUTH_TRUSTED_PROXY_COUNT = PORTAL_TRUSTED_PROXY_COUNT
ACCOUNT_FORMS = {"signup": "accounts.forms.OrganisationSignupForm"}
MFA_ADAPTER = "accounts.adapters.PortalMFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Partner Access Portal"
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "account_login"

# MFA for every admin; the embedded demo turns it off and shows a banner saying so.
PORTAL_REQUIRE_MFA = env.bool("PORTAL_REQUIRE_MFA", default=True)
# Set by `make run`: shows the demo banner and the /dev/mail viewer.
PORTAL_EMBEDDED = env.bool("PORTAL_EMBEDDED", default=False)

# --- Celery ---------------------------------------------------------------------------------
BROKER_DIR = DATA_DIR / "broker"
# The filesystem transport ignores the host; naming one stops kombu warning on every connect.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport with atomic writes: its own lets a worker read a message
    # that is still being written (core/filesystem_broker.py says why not SQLAlchemy).
    CELERY_BROKER_TRANSPORT = "core.filesystem_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Broadcasts (worker control, events) go here instead of ./control in the cwd.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The folder is polled; kombu's 1 s default would add up to a second to every apply.
        "polling_interval": env.float("CELERY_FILESYSTEM_POLLING_INTERVAL", default=0.1),
    }
    # Every process that publishes (web, beat) or consumes (worker) must find the folders;
    # kombu does not create them, and a publish into a missing folder fails.
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Tasks are idempotent and carry ids only, so redelivery after the visibility timeout is
    # harmless; it must exceed the longest task time limit.
    # "priority": a worker polls its queues in the order of CELERY_TASK_QUEUES every time
    # (kombu's default rotates them), so a reconcile waiting in "celery" is always taken
    # before the next notification delivery (measured: round-robin let a bulk approval's
    # hundreds of deliveries hold each wave of roles for a second and more).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "queue_order_strategy": "priority",
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Notification deliveries have a queue of their own, which every worker also consumes (a
# worker started without -Q takes all the queues listed here, "celery" first on Redis: see
# queue_order_strategy above): a bulk approval's
# hundreds of emails and chat posts then never stand in line in front of the reconciles that
# give partners their access (measured: 600 deliveries queued first held a role 50 s).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery", Exchange("celery"), routing_key="celery"),
    Queue("notifications", Exchange("notifications"), routing_key="notifications"),
)
CELERY_TASK_ROUTES = {
    "notifications.deliver": {"queue": "notifications"},
    "notifications.deliver_many": {"queue": "notifications"},
    "notifications.publish_deliveries": {"queue": "notifications"},
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# The scheduler's work (tasks in delegations.worker.tasks). Every entry is idempotent; none takes an
# argument. Countdowns and intervals stay far below the broker's visibility timeout.
CELERY_BEAT_SCHEDULE: dict = {
    # Publish outbox rows never published or whose task was lost (broker outage, dead worker).
    "dispatch-outbox": {"task": "delegations.dispatch_outbox", "schedule": 30.0},
    # End delegations whose end date has passed (through revoking, ending as expired).
    "expire-delegations": {"task": "delegations.expire_delegations", "schedule": 60.0},
    # Scheduled access: applied shortly before its start.
    "start-scheduled-delegations": {
        "task": "delegations.start_scheduled_delegations",
        "schedule": 60.0,
    },
    # The periodic reconciler: pending roles get a reconcile, settled ones a drift check.
    "reconcile-all-roles": {
        "task": "delegations.reconcile_all_roles",
        "schedule": env.float("PORTAL_RECONCILER_INTERVAL_SECONDS", default=300.0),
    },
    # Free leases of dead workers; re-request roles stuck in applying/revoking.
    "sweep-stuck-work": {
        "task": "delegations.sweep_stuck_work",
        "schedule": env.float("PORTAL_SWEEP_INTERVAL_SECONDS", default=15.0),
    },
    # Partner side: RAM users whose AssumeRole policy should change (ended delegations,
    # removed people, a replaced broker key) get a reconcile.
    "sync-partner-user-policies": {
        "task": "delegations.sync_partner_user_policies",
        "schedule": 60.0,
    },
    # A verification of the audit chain whose worker was lost is failed, not left "running".
    "audit-sweep-stale-verifications": {
        "task": "audit.sweep_stale_verifications",
        "schedule": 300.0,
    },
    # Sign-ups nobody confirmed within PORTAL_UNCONFIRMED_SIGNUP_DAYS give their account back.
    "expire-unconfirmed-signups": {
        "task": "accounts.expire_unconfirmed_signups",
        "schedule": 3600.0,
    },
    # Signs the audit chain head into AUDIT_CHECKPOINT_DIR (see audit/checkpoints.py).
    "audit-checkpoint-daily": {
        "task": "audit.write_checkpoint",
        "schedule": crontab(minute=5, hour=0),
    },
}

# --- The worker's reconciliation (delegations.worker.owner_role) -----------------------------
# How long a worker holds a role's lock without renewing it. A live run renews it every
# PORTAL_LEASE_HEARTBEAT_SECONDS; a dead worker's lease expires this long after its last beat.
PORTAL_ROLE_LEASE_SECONDS = env.float("PORTAL_ROLE_LEASE_SECONDS", default=30.0)
PORTAL_LEASE_HEARTBEAT_SECONDS = env.float("PORTAL_LEASE_HEARTBEAT_SECONDS", default=10.0)
# RAM reads may show the previous trust policy for a few seconds after a write (anyone's):
# before writing, the worker waits this long after its read and reads again. 0: no wait.
PORTAL_RAM_READ_SETTLE_SECONDS = env.float(
    "PORTAL_RAM_READ_SETTLE_SECONDS", default=0.0 if DEBUG or PORTAL_EMBEDDED else 5.0
)
# Outbox rows published but not done after this long are published again.
PORTAL_OUTBOX_REPUBLISH_AFTER_SECONDS = env.float(
    "PORTAL_OUTBOX_REPUBLISH_AFTER_SECONDS", default=60.0
)
# While a worker applies access, batches of notification deliveries wait for it, at most this
# long (keep it below the republish delay above: the dispatcher would publish them again).
PORTAL_NOTIFICATIONS_YIELD_SECONDS = env.float("PORTAL_NOTIFICATIONS_YIELD_SECONDS", default=30.0)
# The longest a web request waits for the broker when publishing (one attempt, no retry).
PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS = env.float(
    "PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS", default=0.5
)
# A role's trust policy size limit in characters (RAM's documented 4,096): when approvals do
# not all fit, those that fit go in and the rest wait for room.
PORTAL_TRUST_POLICY_MAX_CHARS = env.int("PORTAL_TRUST_POLICY_MAX_CHARS", default=4096)
# After a write, how long to keep re-reading until the cloud shows it (RAM reads may be stale).
PORTAL_RECONCILE_VERIFY_TIMEOUT_SECONDS = env.float(
    "PORTAL_RECONCILE_VERIFY_TIMEOUT_SECONDS", default=20.0
)
# Transient errors are retried in place while the wait is short, then by Celery with backoff.
PORTAL_RECONCILE_INLINE_ATTEMPTS = env.int("PORTAL_RECONCILE_INLINE_ATTEMPTS", default=4)
PORTAL_RECONCILE_INLINE_MAX_WAIT_SECONDS = env.float(
    "PORTAL_RECONCILE_INLINE_MAX_WAIT_SECONDS", default=3.0
)
PORTAL_RECONCILE_RETRY_BASE_SECONDS = env.float("PORTAL_RECONCILE_RETRY_BASE_SECONDS", default=2.0)
# A delegation in approved/applying/revoking this long without change is re-requested.
PORTAL_STUCK_AFTER_SECONDS = env.int("PORTAL_STUCK_AFTER_SECONDS", default=600)
# Drift checks leave a role alone this long after a reconcile (stale reads look like drift).
PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = env.int(
    "PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS", default=30
)


# --- Audit ----------------------------------------------------------------------------------
# Signed checkpoints of the audit chain: the HMAC key comes from the environment only (never the
# database), the files go outside the database. Without a key the beat task logs a warning.
AUDIT_CHECKPOINT_KEY = env.str("AUDIT_CHECKPOINT_KEY", default="")
AUDIT_CHECKPOINT_DIR = Path(
    env.str("AUDIT_CHECKPOINT_DIR", default=str(DATA_DIR / "audit-checkpoints"))
)

# --- Alibaba Cloud --------------------------------------------------------------------------
# The official SDKs talk to these endpoints. The embedded default is cloudsim on loopback;
# production uses ram.aliyuncs.com and sts.<region>.aliyuncs.com over https.
ALIBABA_CLOUD_PROTOCOL = env.str("ALIBABA_CLOUD_PROTOCOL", default="http")
ALIBABA_RAM_ENDPOINT = env.str("ALIBABA_RAM_ENDPOINT", default="127.0.0.1:9100")
ALIBABA_STS_ENDPOINT = env.str("ALIBABA_STS_ENDPOINT", default="127.0.0.1:9100")
ALIBABA_CLOUD_CONNECT_TIMEOUT_MS = env.int("ALIBABA_CLOUD_CONNECT_TIMEOUT_MS", default=3000)
ALIBABA_CLOUD_READ_TIMEOUT_MS = env.int("ALIBABA_CLOUD_READ_TIMEOUT_MS", default=10000)
# Where the console's switch-role page lives (signin.aliyun.com in production).
ALIBABA_CONSOLE_SIGNIN_URL = env.str("ALIBABA_CONSOLE_SIGNIN_URL", default="http://127.0.0.1:9100")
# cloudsim's demo credentials file, read by `seed_demo` to connect the demo accounts.
CLOUDSIM_DATA_DIR = Path(env.str("CLOUDSIM_DATA_DIR", default=str(DATA_DIR / "cloudsim")))

# --- Partner staff credentials (delegations.partner) ------------------------------------
# The longest STS credentials the portal issues (seconds, >= 900); also capped by the role's
# maximum session and the time left on the delegation. Keeps the residual window short.
PORTAL_MAX_CREDENTIAL_SECONDS = env.int("PORTAL_MAX_CREDENTIAL_SECONDS", default=3600)
if PORTAL_MAX_CREDENTIAL_SECONDS < 900:
    raise ValueError("PORTAL_MAX_CREDENTIAL_SECONDS must be at least 900 (STS's minimum).")
# How often one credentials URI, one client IP and one person on the credentials page may
# fetch credentials: "<count>/<seconds>".
PORTAL_CREDENTIALS_URI_RATE = env.str("PORTAL_CREDENTIALS_URI_RATE", default="30/60")
PORTAL_CREDENTIALS_URI_IP_RATE = env.str("PORTAL_CREDENTIALS_URI_IP_RATE", default="120/60")
PORTAL_CREDENTIALS_PAGE_RATE = env.str("PORTAL_CREDENTIALS_PAGE_RATE", default="20/60")
# How many partner link codes one partner organisation may try: "<count>/<seconds>".
PORTAL_PARTNER_LINK_CODE_RATE = env.str("PORTAL_PARTNER_LINK_CODE_RATE", default="10/600")
# Issuing holds the delegation's row lock during AssumeRole: keep that call short.
PORTAL_CREDENTIAL_READ_TIMEOUT_MS = env.int("PORTAL_CREDENTIAL_READ_TIMEOUT_MS", default=5000)
# Fernet keys (comma-separated, newest first) that encrypt cloud AccessKey secrets at rest.
# MultiFernet decrypts with any of them; `manage.py rotate_secrets` re-encrypts with the first.
PORTAL_ENCRYPTION_KEYS = env.list("PORTAL_ENCRYPTION_KEYS", default=[])

# --- Logging --------------------------------------------------------------------------------
# Secrets that travel in URLs (credentials-URI keys, invitation tokens, allauth's keys) never
# reach a log line, whatever logger the line comes from and whether DEBUG is on or off: every
# record is redacted as it is made, so handlers the Alibaba SDKs add on import and Celery's
# own are covered too. The handlers here also carry the redaction as filters, for a record
# made some other way (logging.makeLogRecord, a library replacing the record factory).
LOGGING_CONFIG = "core.log_redaction.configure_logging"
LOG_REDACTION_FILTERS = ["redact_secret_paths", "redact_credentials_uri_keys"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "redactors": [
        "core.log_redaction.redact_secret_paths",
        "delegations.partner.log_redaction.redact_uri_keys",
    ],
    "filters": {
        "request_id": {"()": "core.request_id.RequestIdLogFilter"},
        "redact_secret_paths": {"()": "core.log_redaction.RedactSecretPaths"},
        "redact_credentials_uri_keys": {
            "()": "delegations.partner.log_redaction.RedactCredentialsUriKeys"
        },
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id", *LOG_REDACTION_FILTERS],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Removes the handlers Django's own DEFAULT_LOGGING puts on "django" (a console
        # handler for DEBUG, mail_admins otherwise): they would write without our filters.
        # Its lines go on to the root logger's handler.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # runserver's request lines, through our handler so the redaction filters apply.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {"level": "ERROR"},
        "django.security.DisallowedHost": {"level": "ERROR"},
    },
}

# --- One-click console sign-in through federation ------------------------------------------
# Off by default: the international console's TicketType is not fully documented, so the
# switch-role link stays the default; `make run` turns it on (cloudsim implements it).
PORTAL_CONSOLE_FEDERATION = env.bool("PORTAL_CONSOLE_FEDERATION", default=False)
# GetSigninToken's TicketType ("normal" for the ordinary console; the docs say "mini").
PORTAL_CONSOLE_TICKET_TYPE = env.str("PORTAL_CONSOLE_TICKET_TYPE", default="normal")
# The console page people land on; empty: `<ALIBABA_CONSOLE_SIGNIN_URL>/console` (cloudsim's).
PORTAL_CONSOLE_DESTINATION = env.str("PORTAL_CONSOLE_DESTINATION", default="")
# --- Activity from ActionTrail (activity) ----------------------------------------------------
# What partner sessions did in owners' accounts: ingested from ActionTrail's LookupEvents by
# beat, joined to delegations and people, kept longer than ActionTrail's own 90 days.
INSTALLED_APPS += ["activity"]
# "{region}" in it is replaced by each region read (actiontrail.{region}.aliyuncs.com).
ALIBABA_ACTIONTRAIL_ENDPOINT = env.str("ALIBABA_ACTIONTRAIL_ENDPOINT", default="127.0.0.1:9100")
# ActionTrail is regional: each owner account's own region is read, and these as well.
PORTAL_ACTIVITY_REGIONS = env.list("PORTAL_ACTIVITY_REGIONS", default=[])
# --- OOS and ECS (runbooks through OOS) ----------------------------------------------------
# oos.<region>.aliyuncs.com and ecs.aliyuncs.com in production; cloudsim embedded.
ALIBABA_OOS_ENDPOINT = env.str("ALIBABA_OOS_ENDPOINT", default="127.0.0.1:9100")
ALIBABA_ECS_ENDPOINT = env.str("ALIBABA_ECS_ENDPOINT", default="127.0.0.1:9100")
# ActionTrail answers LookupEvents 2 times per second per account: one client never asks faster.
ALIBABA_ACTIONTRAIL_QPS = env.float("ALIBABA_ACTIONTRAIL_QPS", default=2.0)
PORTAL_ACTIVITY_RETENTION_DAYS = env.int("PORTAL_ACTIVITY_RETENTION_DAYS", default=400)
# Each run re-reads this much before its cursor: ActionTrail delivers events minutes late.
PORTAL_ACTIVITY_OVERLAP_SECONDS = env.int("PORTAL_ACTIVITY_OVERLAP_SECONDS", default=1800)
# Denied calls raise an alert (a notice, an audit event) only this many under one delegation
# within this many seconds: a lone refusal is part of working at a role's edge.
PORTAL_ACTIVITY_DENIED_BURST_CALLS = env.int("PORTAL_ACTIVITY_DENIED_BURST_CALLS", default=10)
PORTAL_ACTIVITY_DENIED_BURST_SECONDS = env.int("PORTAL_ACTIVITY_DENIED_BURST_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["activity-ingest"] = {
    "task": "activity.ingest_all_accounts",
    "schedule": env.float("PORTAL_ACTIVITY_INGEST_INTERVAL_SECONDS", default=300.0),
}
# --- Notifications: email, chat channels, the inbox, reminders ------------------------------
INSTALLED_APPS += ["notifications"]
# The inbox count in the navigation and the Overview's "Waiting for you".
TEMPLATES[0]["OPTIONS"]["context_processors"].append(  # type: ignore[index]
    "delegations.inbox.context_processors.inbox"
)
# Where links in emails and chat messages point (the worker has no request to ask).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
# A request nobody decided reminds the approvers after this many seconds, then daily.
PORTAL_REMIND_AFTER = env.int("PORTAL_REMIND_AFTER", default=4 * 3600)
# Seconds a chat service or webhook may keep the worker waiting, on each read of its answer
# (connecting: at most 3); past it the delivery is retried. A whole post is cut off after half
# the claim, as an email is; this keeps one stalled wait within that.
PORTAL_WEBHOOK_TIMEOUT_SECONDS = _well_within_the_claim(
    "PORTAL_WEBHOOK_TIMEOUT_SECONDS", env.float("PORTAL_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
)
# The egress proxy chat webhooks go through (http://[user:password@]host:port), if any. Set
# explicitly rather than read from HTTPS_PROXY: a post tunnels through it to the address the
# SSRF guard checked, never to a name the proxy would resolve again.
PORTAL_WEBHOOK_PROXY = env.str("PORTAL_WEBHOOK_PROXY", default="")
CELERY_BEAT_SCHEDULE.update(
    {
        # Deliveries whose publish failed (broker down) or whose worker died mid-send.
        "dispatch-notifications": {"task": "notifications.dispatch_deliveries", "schedule": 30.0},
        # Reminders of undecided requests, warnings 24 h and 1 h before access ends.
        "send-reminders": {"task": "delegations.send_reminders", "schedule": 60.0},
        # Break-glass: assign activators, remind and escalate unreviewed ones.
        "break-glass-sweep": {"task": "delegations.break_glass_sweep", "schedule": 60.0},
        # Access reviews: start rounds that are due, remind, apply deadlines.
        "access-reviews-sweep": {"task": "delegations.access_reviews_sweep", "schedule": 300.0},
    }
)

# --- The REST API (api/) ---------------------------------------------------------------------
# Bearer tokens only (no session auth: no CSRF exposure), JSON only, problem+json errors.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # Accepting application/problem+json alone gets JSON answers and problem+json errors.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.negotiation.JsonOrProblemNegotiation",
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.schema.ProblemAutoSchema",
    "UNAUTHENTICATED_USER": None,
    # OPTIONS is a 405 like any method a path does not take (DRF answers it only with a
    # metadata class): the description promises that, and DRF's answer was the view's name
    # and docstring for any id, foreign ones included. No browser calls the API cross-origin.
    "DEFAULT_METADATA_CLASS": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Partner Access Portal API",
    "DESCRIPTION": (
        "Delegations, access and credentials for owners, partners and auditors.\n\n"
        "Errors are problem documents (`application/problem+json`, the `Problem` schema), and "
        "each operation lists those it can answer. Two concern any path rather than one "
        "operation and are said only here: 405 `method-not-allowed` for a method the path does "
        "not take (a path takes the methods listed under it), and 413 `too-large` for any body "
        f"over {DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (listed on the operations that take a body)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ProblemTypeEnum": "api.schema.PROBLEM_TYPE_URIS"},
}
# The device flow (`pap login`): new codes per client IP, polls per device code, codes typed
# per person in the browser: "<count>/<seconds>".
PORTAL_API_DEVICE_CODE_RATE = env.str("PORTAL_API_DEVICE_CODE_RATE", default="10/600")
PORTAL_API_DEVICE_POLL_RATE = env.str("PORTAL_API_DEVICE_POLL_RATE", default="60/600")
PORTAL_API_DEVICE_CONFIRM_RATE = env.str("PORTAL_API_DEVICE_CONFIRM_RATE", default="10/600")

# --- Runbooks through OOS (runbooks/) ---------------------------------------------------------
# Partner staff run a command over owner accounts and regions through OOS's multi-account
# template, in the partner's own account (OOSServiceRole), with rate control.
INSTALLED_APPS += ["runbooks"]
# The regions a single grant's runs may touch (a fleet grant names its own).
PORTAL_RUNBOOK_REGIONS = env.list(
    "PORTAL_RUNBOOK_REGIONS", default=["cn-hangzhou", "cn-shanghai", "cn-beijing"]
)
# How often the worker reads a running execution (ListExecutions / ListTaskExecutions).
PORTAL_RUNBOOK_POLL_SECONDS = env.float("PORTAL_RUNBOOK_POLL_SECONDS", default=2.0)
# While a run is going, every instance's outcome (a walk of OOS's child executions) is read this
# often; at the end always.
PORTAL_RUNBOOK_RESULTS_SECONDS = env.float("PORTAL_RUNBOOK_RESULTS_SECONDS", default=5.0)
# Runs queued but never submitted, or running but no longer followed (a lost worker or
# publish), are picked up again by beat.
CELERY_BEAT_SCHEDULE["runbooks-sweep"] = {"task": "runbooks.sweep_runs", "schedule": 60.0}
