"""`manage.py check` warns about queue settings that contradict each other, and refuses a
precision it does not know."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from workers import precision


@register()
def queue_settings(app_configs, **kwargs):
    found = []
    hard = settings.CELERY_TASK_TIME_LIMIT
    redis = settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    if redis and hard and settings.PEFTLAB_VISIBILITY_TIMEOUT <= hard:
        found.append(
            Warning(
                f"PEFTLAB_VISIBILITY_TIMEOUT ({settings.PEFTLAB_VISIBILITY_TIMEOUT} s) is not above the hard "
                f"time limit ({hard} s): Redis will hand a long run's message to a second worker",
                hint="keep it several times the hard limit (the default is 4x)",
                id="peftlab.W001",
            )
        )
    if settings.PEFTLAB_STALE_RUN_SECONDS < 3 * settings.PEFTLAB_HEARTBEAT_SECONDS:
        found.append(
            Warning(
                f"PEFTLAB_STALE_RUN_SECONDS ({settings.PEFTLAB_STALE_RUN_SECONDS}) is under three heartbeats "
                f"({settings.PEFTLAB_HEARTBEAT_SECONDS} s each): live runs may be failed as lost",
                hint="raise PEFTLAB_STALE_RUN_SECONDS or lower PEFTLAB_HEARTBEAT_SECONDS",
                id="peftlab.W002",
            )
        )
    return found


@register()
def precision_setting(app_configs, **kwargs):
    try:
        precision.choice()
    except precision.PrecisionError as exc:
        return [
            Error(
                str(exc),
                hint="auto: bf16 autocast where the device multiplies bf16 natively, fp32 elsewhere",
                id="peftlab.E001",
            )
        ]
    return []
