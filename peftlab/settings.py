"""Settings for PEFT Lab, all read from the environment (see .env.example).

The defaults are the embedded laptop mode: SQLite under var/, a filesystem broker that needs no
server, CPU queue. A class instance sets DATABASE_URL, CELERY_BROKER_URL and PEFTLAB_RUN_QUEUE.
"""

from pathlib import Path

import dj_database_url

from peftlab import lan
from peftlab.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PEFTLAB_VAR_DIR", str(BASE_DIR / "var")))
# The embedded mode keeps its database, broker queue and adapters here; it must exist before
# the first `migrate`.
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
# The address the web server listens on (`manage.py lab` passes it to gunicorn): 127.0.0.1 is
# this machine alone; 0.0.0.0 (`PEFTLAB_BIND=0.0.0.0 make run`) lets a class's devices on the same
# network in, at this machine's network address, which the host names then allow too.
PEFTLAB_BIND = env_str("PEFTLAB_BIND", "127.0.0.1")
_LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
if not lan.is_loopback(PEFTLAB_BIND):
    _LOCAL_HOSTS += [a for a in (lan.lan_address(), PEFTLAB_BIND) if a and a not in ("0.0.0.0", "::")]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", _LOCAL_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# A hosted instance (docker-compose.yml sets PEFTLAB_PRODUCTION=1): the secret key must come
# from the environment, and with PEFTLAB_HTTPS (the default there) the site is served over TLS
# by a proxy in front, with secure cookies and HSTS; `manage.py check --deploy` is clean.
PRODUCTION = env_bool("PEFTLAB_PRODUCTION", False)
if PRODUCTION:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
    if not SECRET_KEY:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "PEFTLAB_PRODUCTION is set but DJANGO_SECRET_KEY is not: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`"
        )
    if env_bool("PEFTLAB_HTTPS", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        SECURE_SSL_REDIRECT = True
        SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
        SECURE_HSTS_SECONDS = env_int("PEFTLAB_HSTS_SECONDS", 31_536_000)
        SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PEFTLAB_HSTS_SUBDOMAINS", True)
        SECURE_HSTS_PRELOAD = env_bool("PEFTLAB_HSTS_PRELOAD", True)
        # The health check comes from inside the container, over plain HTTP.
        SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
else:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", "embedded-mode-only-not-secret-set-DJANGO_SECRET_KEY")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "peftlab.apps.StaticFiles",
    "peftlab.runs",
    "peftlab.classroom",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response, in every mode (the policy: peftlab/csp.py).
    "peftlab.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Chapter pages frame their playgrounds; no other site may. (`check --deploy` would prefer DENY,
# which would blank every chapter.)
X_FRAME_OPTIONS = "SAMEORIGIN"
SILENCED_SYSTEM_CHECKS = ["security.W019"]

ROOT_URLCONF = "peftlab.urls"
WSGI_APPLICATION = "peftlab.wsgi.application"
ASGI_APPLICATION = "peftlab.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "peftlab.classroom.context_processors.classroom",
                "peftlab.pages.context.method_colours",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'peftlab.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read points while the worker writes them; IMMEDIATE avoids
    # "database is locked" upgrades from read to write inside a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Tests on a file too, not in memory: an in-memory database shared by threads (the async
    # views' and the workers' in tests) locks whole tables across them ("table is locked").
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
# A web process shares a pool of PostgreSQL connections among its requests and event streams (a
# stream holds one only while it reads, peftlab/api/events.py) instead of opening one per request and
# holding one per open stream: 200 students following their runs would pass PostgreSQL's 100.
# `lab web` sets it (10 per process); a worker never pools: a pool must not cross the fork of its
# training processes. A fixed size, opened in full with the process's first request: a pool that
# grows does so one connection at a time, while a class's "Train" burst waits for them.
PEFTLAB_DB_POOL_SIZE = env_int("PEFTLAB_DB_POOL_SIZE", 0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and PEFTLAB_DB_POOL_SIZE:
    DATABASES["default"]["OPTIONS"] = {
        "pool": {"min_size": PEFTLAB_DB_POOL_SIZE, "max_size": PEFTLAB_DB_POOL_SIZE, "timeout": 10}
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A run request is a few hundred bytes; anything near this limit is abuse, answered with 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("PEFTLAB_MAX_BODY_BYTES", 64 * 1024)

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Plotly's cartesian bundle (scatter, bar, heatmap: every trace the lab draws), installed by
    # `make setup` (`npm ci`, pinned in package-lock.json) and served from here: no CDN.
    ("vendor/plotly", BASE_DIR / "node_modules" / "plotly.js-cartesian-dist-min"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# `make run` (and the Docker image) collect the static files first, each with its gzip and
# Brotli copy (Plotly's bundle: 1.5 MB; 0.5 MB gzipped, 0.4 MB Brotli): served from there. Without
# collected files (tests, a bare `manage.py lab`), from the app folders as they are.
WHITENOISE_USE_FINDERS = not STATIC_ROOT.is_dir()

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_TZ = True

# --- Teachers, students, and the cache that rate limits live in ---
# Teachers are Django users (`manage.py createsuperuser`); students have no password: a join code
# and a nickname put them in the session. The session cookie lasts the school term.
LOGIN_URL = "/teachers/login/"
LOGIN_REDIRECT_URL = "/classes/"
LOGOUT_REDIRECT_URL = "/"
SESSION_COOKIE_AGE = 120 * 24 * 3600
SESSION_COOKIE_HTTPONLY = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every web process must see the same counters: Redis in the class topology
# (redis://host:6379/2), else files under var/ that all processes of one machine share.
_CACHE_URL = env_str("PEFTLAB_CACHE_URL", "")
if _CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL}}
elif _CACHE_URL:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"PEFTLAB_CACHE_URL must be a redis:// URL (got {_CACHE_URL!r}); leave it "
        "unset for the file cache under PEFTLAB_VAR_DIR"
    )
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# Anyone may sign up as a teacher only where this is on (default: teachers are made with
# `manage.py createsuperuser`).
PEFTLAB_TEACHER_SIGNUP = env_bool("PEFTLAB_TEACHER_SIGNUP", False)
# What a visitor outside any class may queue (a class has its own limits, set by its teacher).
# The concurrent default lets the largest batch a page queues through (a 16-run rank sweep).
PEFTLAB_PUBLIC_MAX_STEPS = env_int("PEFTLAB_PUBLIC_MAX_STEPS", 2000)
PEFTLAB_PUBLIC_MAX_CONCURRENT = env_int("PEFTLAB_PUBLIC_MAX_CONCURRENT", 16)
PEFTLAB_PUBLIC_DAILY_RUNS = env_int("PEFTLAB_PUBLIC_DAILY_RUNS", 50)
# A visitor's run budget: its estimated worker minutes (workers/run_cost.py; a class sets its own).
PEFTLAB_PUBLIC_MAX_RUN_MINUTES = env_float("PEFTLAB_PUBLIC_MAX_RUN_MINUTES", 5)
# Rate limits, per student, teacher or browser session, per minute; sign-ins per account and
# client address, failures only.
PEFTLAB_SUBMISSIONS_PER_MINUTE = env_int("PEFTLAB_SUBMISSIONS_PER_MINUTE", 10)
PEFTLAB_JOINS_PER_MINUTE = env_int("PEFTLAB_JOINS_PER_MINUTE", 10)
PEFTLAB_LOGINS_PER_MINUTE = env_int("PEFTLAB_LOGINS_PER_MINUTE", 10)
# Uploaded CSV datasets kept per student, teacher or browser session (README "Train on your own CSV").
PEFTLAB_DATASETS_PER_OWNER = env_int("PEFTLAB_DATASETS_PER_OWNER", 20)
# Visitors (no class, not signed in) are also counted per client address: a client that keeps
# no cookies is a new session on every request. Generous, for a workshop behind one address;
# students count per student and use none of it (peftlab/classroom/ratelimit.py).
PEFTLAB_ADDRESS_SUBMISSIONS_PER_MINUTE = env_int("PEFTLAB_ADDRESS_SUBMISSIONS_PER_MINUTE", 60)
PEFTLAB_ADDRESS_WRONG_JOINS_PER_MINUTE = env_int("PEFTLAB_ADDRESS_WRONG_JOINS_PER_MINUTE", 20)
PEFTLAB_ADDRESS_MAX_CONCURRENT = env_int("PEFTLAB_ADDRESS_MAX_CONCURRENT", 32)
PEFTLAB_ADDRESS_DAILY_RUNS = env_int("PEFTLAB_ADDRESS_DAILY_RUNS", 200)
PEFTLAB_ADDRESS_DATASETS = env_int("PEFTLAB_ADDRESS_DATASETS", 60)
# Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated: the TLS
# proxy in front of a class instance); from anyone else the header is ignored.
PEFTLAB_TRUSTED_PROXIES = env_list("PEFTLAB_TRUSTED_PROXIES", [])

# --- Celery (read by peftlab/celery_app.py under the CELERY_ namespace) ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport, with each message written whole before a worker can see it.
    CELERY_BROKER_TRANSPORT = "peftlab.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        # The worker lists the folder this often (kombu's default, 1 s, is a second's wait
        # between pressing Train and the run starting; a listing costs microseconds).
        "polling_interval": 0.05,
    }
CELERY_TASK_IGNORE_RESULT = True  # the database holds every result
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Sending a run must not hang a web request while the broker is down (POST answers 503).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Training runs are long jobs (each setting is exercised by tests/faults/test_faults_*.py):
# - a message is acknowledged when its run ends, and a worker child that dies puts it back,
#   so a run whose process was killed is tried again (its attempts are counted, see Run);
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# - a worker reserves no more than the run it trains;
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# - a run past the soft limit stops and fails, keeping its points; past the hard limit its
#   process is killed and the run failed by the worker (prefork pool: `solo` ignores both);
PEFTLAB_RUN_TIME_LIMIT = env_int("PEFTLAB_RUN_TIME_LIMIT", 3600)
# A worker's pack (workers/runpack.py, peftlab/runs/packs.py): at most this many tokens a fused
# step (each run counted at its batch of the task's longest example) and this much memory for
# the runs' own tensors and activations (the memory calculator's prediction), and this many runs.
PEFTLAB_PACKS = env_int("PEFTLAB_PACKS", 1)  # 0: every run trains alone, as before packs
PEFTLAB_PACK_TOKENS = env_int("PEFTLAB_PACK_TOKENS", 16384)
PEFTLAB_PACK_MEMORY_MB = env_int("PEFTLAB_PACK_MEMORY_MB", 4096)
PEFTLAB_PACK_RUNS = env_int("PEFTLAB_PACK_RUNS", 48)
CELERY_TASK_SOFT_TIME_LIMIT = PEFTLAB_RUN_TIME_LIMIT or None
CELERY_TASK_TIME_LIMIT = env_int("PEFTLAB_RUN_HARD_TIME_LIMIT", PEFTLAB_RUN_TIME_LIMIT + 60) or None
# - Redis hands an unacknowledged message to another worker after the visibility timeout: it
#   must be far above the hard limit or a long run would be delivered twice (the run's claim in
#   the database would still train it once);
PEFTLAB_VISIBILITY_TIMEOUT = env_int("PEFTLAB_VISIBILITY_TIMEOUT", 4 * (CELERY_TASK_TIME_LIMIT or 3600))
# - a worker that loses the broker stops its acks-late runs (their messages come back);
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# - a pool child is replaced after this many runs, giving back its (GPU) memory.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("PEFTLAB_RUNS_PER_CHILD", 10)
# Address space allowed to each training process, in MB (0: no cap). A run that needs more fails
# with "ran out of memory" instead of taking the machine (or its neighbours' runs) down.
PEFTLAB_WORKER_MEMORY_MB = env_int("PEFTLAB_WORKER_MEMORY_MB", 0)
# CPU priority a training process gives up (nice increment, 0-19) so that the web server's
# requests and streams on the same machine are not kept waiting by a run.
PEFTLAB_WORKER_NICE = env_int("PEFTLAB_WORKER_NICE", 10)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu looks for messages past the timeout every interval x throttle seconds (100 s by
    # default); a tenth of the timeout, at most 10 s, keeps a short timeout meaningful.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": PEFTLAB_VISIBILITY_TIMEOUT,
        "unacked_restore_interval": max(1, min(10, PEFTLAB_VISIBILITY_TIMEOUT // 10)),
        "unacked_restore_throttle": 1,
    }

# Where the worker signals a run's new points to the web server's event streams
# (peftlab/runs/notify.py): the Redis of the cache or the broker, else files under var/.
PEFTLAB_NOTIFY_URL = next(
    (url for url in (CELERY_BROKER_URL, _CACHE_URL) if url.startswith(("redis://", "rediss://", "unix://"))), ""
)
PEFTLAB_NOTIFY_DIR = VAR_DIR / "notify"

# --- PEFT Lab ---
# Which Celery queue new runs go to: "gpu" where GPU workers are deployed, "cpu" otherwise.
PEFTLAB_RUN_QUEUE = env_str("PEFTLAB_RUN_QUEUE", "cpu")
# Where trained adapters are written (one folder per run).
PEFTLAB_ARTIFACTS_DIR = Path(env_str("PEFTLAB_ARTIFACTS_DIR", str(VAR_DIR / "artifacts")))
# A training process writes a heartbeat this often (a thread, so also while it loads or
# evaluates); a running run without one for PEFTLAB_STALE_RUN_SECONDS has lost its worker and is
# failed (peftlab/runs/lifecycle.py, fail_lost_runs).
PEFTLAB_HEARTBEAT_SECONDS = env_float("PEFTLAB_HEARTBEAT_SECONDS", 5.0)
PEFTLAB_STALE_RUN_SECONDS = env_float("PEFTLAB_STALE_RUN_SECONDS", 60.0)
# Intra-op threads for a worker's torch (0: torch's default, every core). Set it to
# cores / worker processes when several CPU workers share a machine: oversubscribed OpenMP
# threads make every step several times slower.
PEFTLAB_TORCH_THREADS = env_int("PEFTLAB_TORCH_THREADS", 0)
# How often an event stream reads the database when no signal of a change came (milliseconds;
# the worker's signal, peftlab/runs/notify.py, makes it read at once).
PEFTLAB_SSE_POLL_MS = env_int("PEFTLAB_SSE_POLL_MS", 1000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("PEFTLAB_LOG_LEVEL", "INFO")},
}
