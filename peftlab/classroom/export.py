"""A class's runs as a CSV file, for the teacher to take home (GET /api/classes/{code}/runs.csv).

One row per run of the class, every run (the dashboard lists only each student's newest), by
nickname then run number. Numbers are written as plain numbers (validation accuracy as a
fraction, 0.8125; training time in seconds), as the run measured them; a run that measured
nothing leaves them empty.

Encoding: UTF-8 with a byte order mark. Without the mark, Excel reads a CSV file in the
computer's legacy code page and garbles every nickname outside ASCII (Zoë, Аня, 陈); with it,
Excel, LibreOffice, Numbers and Google Sheets all read UTF-8, and Python's csv reads it with
encoding="utf-8-sig". Lines end with CRLF (RFC 4180).

Nicknames and settings are other people's text: a cell that starts with =, +, -, @, a tab or a
carriage return would be run as a formula by a spreadsheet (CSV injection), so such a cell is
written with a single quote in front, which spreadsheets show as text.
"""

import csv
import io

from peftlab.classroom.models import Classroom
from peftlab.runs.models import Run
from workers import methods

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = (
    "student",
    "run",
    "method",
    "task",
    "settings",
    "steps",
    "seed",
    "status",
    "validation accuracy",
    "training time (s)",
    "trainable parameters",
    "created (UTC)",
)


def safe_cell(value):
    """A cell a spreadsheet shows as written: text that would start a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _setting(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def settings_text(params: dict) -> str:
    """A run's method settings as one cell: "rank=8; alpha=16.0; target_modules=query,value"."""
    return "; ".join(f"{name}={_setting(value)}" for name, value in params.items())


def row(run: Run, nickname: str) -> list:
    m = run.metrics or {}
    method = methods.METHODS.get(run.method)
    return [
        nickname,
        run.pk,
        method.label if method else run.method,
        run.task,
        settings_text(run.params or {}),
        run.steps,
        run.seed,
        run.status,
        _number(m.get("val_accuracy")),
        _number(m.get("train_seconds")),
        _number(m.get("trainable_params")),
        run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
    ]


def rows(classroom: Classroom) -> list[list]:
    nicknames = dict(classroom.students.values_list("pk", "nickname"))
    runs = Run.objects.filter(classroom=classroom).order_by("id")
    return sorted(
        (row(run, nicknames.get(run.student_id, "")) for run in runs),
        key=lambda r: (r[0].casefold(), r[0], r[1]),
    )


def class_csv(classroom: Classroom) -> str:
    """The file's text, its byte order mark first (encode it as UTF-8)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows(classroom):
        writer.writerow([safe_cell(value) for value in r])
    return out.getvalue()
