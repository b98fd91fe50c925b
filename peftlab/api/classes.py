"""GET /api/classes/{code}/dashboard: the live state of a class, for its teacher only.

Mounted by peftlab/api/lab.py. Anyone else (another teacher, a student, a visitor) gets the
same 404 as for a code that does not exist. The dashboard's actions are POSTs elsewhere: cancel
is POST /api/runs/{id}/cancel (a teacher sees every run of their classes), pause and settings are
forms on the dashboard page (peftlab/classroom/views.py)."""

from ninja import Router

from peftlab.api.errors import Error
from peftlab.classroom.dashboard import dashboard
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


@router.get(
    "/{code}/dashboard",
    response={200: dict, 404: Error},
    summary="A class's students and their runs, the leaderboard per method, its queued runs",
)
def class_dashboard(request, code: str):
    classroom = teachers_classroom(request, code)
    if classroom is None:
        raise NotFound(f"there is no class {code!r} of yours; sign in as its teacher")
    return dashboard(classroom)
