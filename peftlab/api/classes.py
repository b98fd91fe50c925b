"""GET /api/classes/{code}/dashboard: the live state of a class, for its teacher only;
GET /api/classes/{code}/curves: the training loss of each student's latest run (the class's
chart); and GET /api/classes/{code}/runs.csv: every run of the class as a CSV file (peftlab/classroom/export.py).

Mounted by peftlab/api/lab.py. Anyone else (another teacher, a student, a visitor) gets the
same 404 as for a code that does not exist. The dashboard's actions are POSTs elsewhere: cancel
is POST /api/runs/{id}/cancel (a teacher sees every run of their classes), pause and settings are
forms on the dashboard page (peftlab/classroom/views.py)."""

from django.http import HttpResponse
from ninja import Router

from peftlab.api.errors import Error
from peftlab.classroom.dashboard import CURVE_POINTS, curves, dashboard
from peftlab.classroom.export import class_csv
from peftlab.classroom.models import Classroom, normalize_code
from peftlab.classroom.viewer import TEACHER, viewer_of
from peftlab.errors import NotFound

router = Router(tags=["classes"])


def teachers_classroom(request, code: str) -> Classroom | None:
    """The class with this code if the request's teacher teaches it, else None."""
    viewer = viewer_of(request)
    if viewer.kind != TEACHER:
        return None
    return Classroom.objects.filter(code=normalize_code(code), teacher=viewer.user).first()


def _own_classroom(request, code: str) -> Classroom:
    """The request's teacher's class of this code; for anyone else the 404 of a missing class."""
    classroom = teachers_classroom(request, code)
    if classroom is None:
        raise NotFound(f"there is no class {code!r} of yours; sign in as its teacher")
    return classroom


@router.get(
    "/{code}/dashboard",
    response={200: dict, 404: Error},
    summary="A class's students and their runs, the leaderboard per method, its queued runs",
)
def class_dashboard(request, code: str):
    return dashboard(_own_classroom(request, code))


@router.get(
    "/{code}/curves",
    response={200: dict, 404: Error},
    summary=f"The training loss of each student's latest started run (at most about {CURVE_POINTS} points a "
    "run), named by the student's nickname",
)
def class_curves(request, code: str):
    return curves(_own_classroom(request, code))


@router.get(
    "/{code}/runs.csv",
    response={200: None, 404: Error},
    openapi_extra={
        "responses": {
            200: {
                "description": "The CSV file (UTF-8 with a byte order mark), one row per run",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
    summary="Every run of a class as a CSV file: student, run, method, settings, status, metrics",
)
def class_runs_csv(request, code: str):
    classroom = _own_classroom(request, code)
    response = HttpResponse(class_csv(classroom).encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="peftlab-class-{classroom.code}-runs.csv"'
    return response
