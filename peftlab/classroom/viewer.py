"""Who is asking: a teacher (a logged-in user), a student (joined in this browser session), or
an anonymous visitor of the public instance. Everything that depends on it (what runs they see,
what they may queue, their rate limits) starts from `viewer_of(request)`."""

from dataclasses import dataclass

from peftlab.classroom.models import Classroom, Student

SESSION_STUDENT = "classroom_student"

ANONYMOUS, STUDENT, TEACHER = "anonymous", "student", "teacher"


@dataclass(frozen=True)
class Viewer:
    kind: str
    user: object = None  # the teacher (a User)
    student: Student | None = None
    session_key: str | None = None

    @property
    def classroom(self) -> Classroom | None:
        return self.student.classroom if self.student else None

    @property
    def owner(self) -> str:
        """The key that runs, quotas and rate limits are counted under; a visitor without a
        session yet has none (see `establish_owner`)."""
        if self.kind == TEACHER:
            return f"teacher:{self.user.pk}"
        if self.kind == STUDENT:
            return self.student.owner
        return f"session:{self.session_key}" if self.session_key else ""


def _session_student(request) -> Student | None:
    student_id = request.session.get(SESSION_STUDENT)
    if student_id is None:
        return None
    student = Student.objects.select_related("classroom").filter(pk=student_id).first()
    if student is None:  # the class was deleted: the browser is a visitor again
        request.session.pop(SESSION_STUDENT, None)
    return student


def viewer_of(request) -> Viewer:
    """Memoised on the request: one query per request, whoever asks."""
    cached = getattr(request, "_peftlab_viewer", None)
    if cached is not None:
        return cached
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        viewer = Viewer(TEACHER, user=user)
    elif (student := _session_student(request)) is not None:
        viewer = Viewer(STUDENT, student=student)
    else:
        viewer = Viewer(ANONYMOUS, session_key=request.session.session_key)
    request._peftlab_viewer = viewer
    return viewer


def establish_owner(request) -> str:
    """The viewer's owner key, creating the session of an anonymous visitor who has none yet
    (their runs, quotas and rate limits are counted per browser session). Called only once what
    they submit is accepted and stored, so that a refused request leaves no session behind."""
    viewer = viewer_of(request)
    if viewer.owner:
        return viewer.owner
    request.session["visitor"] = True
    request.session.save()
    request._peftlab_viewer = Viewer(ANONYMOUS, session_key=request.session.session_key)
    return request._peftlab_viewer.owner


def join(request, student: Student) -> None:
    request.session.cycle_key()  # a fresh session id for the new identity
    request.session[SESSION_STUDENT] = student.pk
    request._peftlab_viewer = None


def leave(request) -> None:
    request.session.pop(SESSION_STUDENT, None)
    request._peftlab_viewer = None
