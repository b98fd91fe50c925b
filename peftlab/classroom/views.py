"""The class pages: a student joins and leaves; a teacher signs in (or up, where allowed), lists
and creates classes, and runs a class from its dashboard."""

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST

from peftlab import lan
from peftlab.classroom import names, ratelimit
from peftlab.classroom.forms import JoinForm, NewClassroomForm, SettingsForm
from peftlab.classroom.joinlink import join_link, qr_svg
from peftlab.classroom.models import KEY_CLASH_SEPARATOR, Classroom, Student
from peftlab.classroom.viewer import SESSION_STUDENT, TEACHER, join, leave, viewer_of
from peftlab.errors import LabError

# Students this browser has been, so that leaving and joining again with the same nickname gets
# the same student back (another browser cannot take it over).
SESSION_PAST_STUDENTS = "classroom_past_students"


def _refused(request, template: str, context: dict, exc: LabError):
    response = render(request, template, {**context, "refusal": exc.message}, status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


# --- students ---------------------------------------------------------------------------------
def _lookalikes(classroom: Classroom, key: str):
    """The students of the class whose nickname has this key, and those who had joined under
    lookalikes of each other before keys existed (migration 0003 gave the later ones this key, a
    line end and their id)."""
    return classroom.students.filter(Q(nickname_key=key) | Q(nickname_key__startswith=key + KEY_CLASH_SEPARATOR))


def _find_or_create_student(request, classroom: Classroom, nickname: str) -> Student | None:
    """The student to be: new, or this browser's own student of a nickname that looks like this
    one ("ana" or "Аna" for "Ana", names.skeleton); None when another browser holds it."""
    key = names.skeleton(nickname)
    existing = list(_lookalikes(classroom, key))
    if existing:
        mine = set(request.session.get(SESSION_PAST_STUDENTS, [])) | {request.session.get(SESSION_STUDENT)}
        own = sorted((s for s in existing if s.pk in mine), key=lambda s: (s.nickname != nickname, s.pk))
        return own[0] if own else None
    try:
        with transaction.atomic():
            return Student.objects.create(classroom=classroom, nickname=nickname, nickname_key=key)
    except IntegrityError:  # someone took it (or a lookalike) a moment ago
        return None


@ensure_csrf_cookie
def join_view(request):
    viewer = viewer_of(request)
    form = JoinForm(request.POST or None, initial={"code": request.GET.get("code", "")})
    context = {"form": form, "viewer": viewer}
    if request.method != "POST":
        return render(request, "classroom/join.html", context)
    if viewer.kind == TEACHER:
        form.add_error(
            None,
            "you are signed in as a teacher; open this page in a private window (or sign out) to join as a student",
        )
        return render(request, "classroom/join.html", context, status=400)
    try:
        ratelimit.join_attempt(request)
    except LabError as exc:
        return _refused(request, "classroom/join.html", context, exc)
    if not form.is_valid():
        return render(request, "classroom/join.html", context, status=400)
    code, nickname = form.cleaned_data["code"], form.cleaned_data["nickname"]
    classroom = Classroom.objects.filter(code=code).first()
    if classroom is None:
        ratelimit.wrong_join_code(request)
        form.add_error("code", f"there is no class with the code {code}; check it with your teacher")
        return render(request, "classroom/join.html", context, status=404)
    student = _find_or_create_student(request, classroom, nickname)
    if student is None:
        form.add_error("nickname", "that nickname, or one that looks the same, is taken in this class; choose another")
        return render(request, "classroom/join.html", context, status=409)
    past = request.session.get(SESSION_PAST_STUDENTS, [])
    join(request, student)
    request.session[SESSION_PAST_STUDENTS] = sorted(set(past) | {student.pk})[-50:]
    return redirect("classroom:join")


@require_POST
def leave_view(request):
    leave(request)
    return redirect("classroom:join")


# --- teachers ---------------------------------------------------------------------------------
class LoginView(auth_views.LoginView):
    template_name = "classroom/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "signup_open": settings.PEFTLAB_TEACHER_SIGNUP}

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        try:
            ratelimit.login_attempt(request, username)
        except LabError as exc:
            return _refused(request, self.template_name, self.get_context_data(form=self.get_form()), exc)
        response = super().post(request, *args, **kwargs)
        if not request.user.is_authenticated:  # the form said no: one more failure to count
            ratelimit.login_failed(request, username)
        return response


class LogoutView(auth_views.LogoutView):
    pass


def signup_view(request):
    """Open teacher sign-up, only where PEFTLAB_TEACHER_SIGNUP is on (default: 404)."""
    if not settings.PEFTLAB_TEACHER_SIGNUP:
        raise Http404("Teacher sign-up is off on this lab; ask whoever hosts it for an account.")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST":
        try:
            ratelimit.signup_attempt(request)
        except LabError as exc:
            return _refused(request, "classroom/signup.html", {"form": form}, exc)
        if form.is_valid():
            user = form.save()
            leave(request)
            auth.login(request, user)
            return redirect("classroom:home")
        return render(request, "classroom/signup.html", {"form": form}, status=400)
    return render(request, "classroom/signup.html", {"form": form})


@login_required
def home_view(request):
    form = NewClassroomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        classroom = form.save(commit=False)
        classroom.teacher = request.user
        classroom.save()
        return redirect("classroom:dashboard", code=classroom.code)
    classes = request.user.classrooms.order_by("-id")
    return render(
        request,
        "classroom/home.html",
        {"form": form, "classes": classes, "defaults": Classroom()},
        status=400 if form.errors else 200,
    )


def _own_classroom(request, code: str) -> Classroom:
    classroom = Classroom.objects.filter(code=code.upper(), teacher=request.user).first()
    if classroom is None:
        raise Http404(f"There is no class {code} of yours.")
    return classroom


@login_required
@ensure_csrf_cookie
def dashboard_view(request, code: str):
    classroom = _own_classroom(request, code)
    form = SettingsForm(request.POST or None, instance=classroom)
    saved = False
    if request.method == "POST":
        if form.is_valid():
            form.save()
            return redirect(f"{request.path}?saved=1")
    else:
        saved = request.GET.get("saved") == "1"
    link = join_link(request.scheme, request.get_host(), classroom.code, settings.PEFTLAB_BIND, lan.lan_address())
    return render(
        request,
        "classroom/dashboard.html",
        {
            "classroom": classroom,
            "form": form,
            "saved": saved,
            "join": link,
            "bind": settings.PEFTLAB_BIND,
            # Drawn here from the link alone (segno's SVG: paths, no script or style attribute).
            "join_qr": mark_safe(qr_svg(link.url)) if link.reachable else "",
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def pause_view(request, code: str):
    classroom = _own_classroom(request, code)
    classroom.submissions_paused = request.POST.get("paused") == "1"
    classroom.save(update_fields=["submissions_paused"])
    return redirect("classroom:dashboard", code=classroom.code)
