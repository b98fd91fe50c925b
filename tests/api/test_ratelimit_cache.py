"""Rate-limit counters are shared by every web process: two processes (this one and a fresh
Python) count into the same window, on the default file cache and on Redis (PEFTLAB_CACHE_URL).
A PEFTLAB_CACHE_URL that is not Redis stops the lab at start instead of falling back quietly."""

import os
import subprocess
import sys
import uuid

import pytest
import redis

from peftlab.classroom.ratelimit import hit
from peftlab.errors import TooMany
from tests.support.labstack import ROOT
from tests.support.services import redis_url

OTHER_PROCESS = """
import django
django.setup()
from peftlab.classroom.ratelimit import hit
from peftlab.errors import TooMany
try:
    hit("test", "{who}", 3, "tests", window=3600)
    print("allowed")
except TooMany as exc:
    print("refused", exc.retry_after)
"""


def other_process(who: str, **env) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "peftlab.settings", **env}
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS.format(who=who)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.parametrize("backend", ["files", pytest.param("redis", marks=pytest.mark.services)])
def test_two_processes_count_into_one_window(backend, settings, tmp_path):
    if backend == "redis":
        url = redis_url()  # a fresh database of this test process's own Redis
        redis.Redis.from_url(url).flushdb()
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
        env = {"PEFTLAB_CACHE_URL": url}
    else:  # what settings.py configures without PEFTLAB_CACHE_URL, under this var dir
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path / "cache"),
            }
        }
        env = {"PEFTLAB_VAR_DIR": str(tmp_path), "PEFTLAB_CACHE_URL": ""}
    who = uuid.uuid4().hex
    hit("test", who, 3, "tests", window=3600)
    hit("test", who, 3, "tests", window=3600)
    assert other_process(who, **env) == "allowed"  # the third
    with pytest.raises(TooMany) as refused:  # the fourth, back here
        hit("test", who, 3, "tests", window=3600)
    assert refused.value.status == 429 and 0 < refused.value.retry_after <= 3601
    assert other_process(who, **env).startswith("refused")
    assert other_process(uuid.uuid4().hex, **env) == "allowed"  # someone else


def test_a_cache_url_that_is_not_redis_stops_the_lab():
    env = {**os.environ, "PEFTLAB_CACHE_URL": "memcached://127.0.0.1:11211"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "PEFTLAB_CACHE_URL must be a redis:// URL" in done.stderr
