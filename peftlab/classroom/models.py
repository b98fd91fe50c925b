"""A teacher's classes and the students in them.

A teacher is a Django user. A student has no account: joining with a class's code and a nickname
stores the student's id in the browser's session (peftlab/classroom/viewer.py). Runs point to both
(peftlab.runs.models.Run.classroom and .student), which is what decides who sees them
(peftlab/classroom/access.py) and what they may queue (peftlab/classroom/quotas.py).
"""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models, transaction

from peftlab.classroom import names
from workers import methods

# No 0/O, 1/I/L: a code read off a projector is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
NICKNAME_MAX = 32
# Between a nickname's skeleton and the student's id in the keys of students who joined, before
# keys existed, under a nickname that looks like an earlier one of their class (migration 0003).
# No nickname holds a line end, so no skeleton does.
KEY_CLASH_SEPARATOR = "\n"


# The class settings as the dashboard's settings form names them (peftlab/classroom/forms.py):
# a refusal that only the teacher can lift names the setting to raise with these words.
SETTING_LABELS = {
    "allowed_methods": "Methods students may run",
    "max_steps": "Maximum steps per run",
    "max_run_minutes": "Worker minutes per run (estimated)",
    "max_concurrent_per_student": "Runs queued or running at once, per student",
    "daily_runs_per_student": "Runs per student per day",
}


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str:
    """What a student typed, as codes are stored: upper case, no spaces or dashes."""
    return "".join(ch for ch in (raw or "").upper() if ch not in " -")


def all_methods() -> list[str]:
    return list(methods.METHODS)


class Classroom(models.Model):
    name = models.CharField(max_length=80)
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classrooms")
    code = models.CharField(max_length=CODE_LENGTH, unique=True, editable=False)
    # Settings, changed by the teacher on the dashboard.
    allowed_methods = models.JSONField(default=all_methods)
    max_steps = models.PositiveIntegerField(
        default=methods.MAX_STEPS, validators=[MinValueValidator(1), MaxValueValidator(methods.MAX_STEPS)]
    )
    max_concurrent_per_student = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    daily_runs_per_student = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    # A run's estimated worker minutes (workers/run_cost.py): what one student's run may hold the
    # worker for. The default fits every method's default run and the flagship exercises.
    max_run_minutes = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    submissions_paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.name} ({self.code})"

    def save(self, *args, **kwargs):
        if self.code:
            return super().save(*args, **kwargs)
        # A fresh code; 31^6 ≈ 890 million codes make a clash rare, and a clash just draws again.
        for _ in range(10):
            self.code = new_code()
            try:
                with transaction.atomic():
                    return super().save(*args, **kwargs)
            except IntegrityError:
                if not type(self).objects.filter(code=self.code).exists():
                    raise
        raise IntegrityError("could not draw an unused join code")

    def allows(self, method: str) -> bool:
        return method in self.allowed_methods


class Student(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="students")
    nickname = models.CharField(max_length=NICKNAME_MAX)  # as typed: what the teacher sees
    # What nicknames are compared by: names.skeleton(nickname), so that "Ana", "ANA", "Аna" (with
    # a Cyrillic А) and "Ａｎａ" are one nickname of the class. A text: NFKC and the skeleton can
    # make a nickname several times longer.
    nickname_key = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["nickname", "id"]
        constraints = [
            models.UniqueConstraint(fields=["classroom", "nickname_key"], name="one_lookalike_nickname_per_class")
        ]

    def __str__(self):
        return f"{self.nickname} in {self.classroom.code}"

    def save(self, *args, **kwargs):
        if not self.nickname_key:
            self.nickname_key = names.skeleton(self.nickname)
        return super().save(*args, **kwargs)

    @property
    def owner(self) -> str:
        return f"student:{self.pk}"
