"""HTML pages: the chapter list, each chapter, each playground, and the training page."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from peftlab.pages.chapters import CHAPTERS, chapter_by_number, playgrounds_by_slug
from simulations import chapter_facts, quizzes
from workers import base_model


@ensure_csrf_cookie
def home(request):
    rows = [
        {
            "chapter": ch,
            "quiz_ids": " ".join(q.id for q in quizzes.QUIZZES.get(ch.number, ())),
            "live_slugs": " ".join(pg.slug for pg in ch.playgrounds if pg.live),
        }
        for ch in CHAPTERS
    ]
    return render(request, "simulations/home.html", {"rows": rows})


def chapter(request, number):
    ch = chapter_by_number(number)
    if ch is None:
        raise Http404(f"There is no chapter {number}; the chapters are 1 to {len(CHAPTERS)}.")
    index = CHAPTERS.index(ch)
    return render(
        request,
        "simulations/chapter.html",
        {
            "chapter": ch,
            "chapter_template": f"simulations/chapters/{ch.number}.html",
            "pgs": {pg.pid: pg for pg in ch.playgrounds},
            "facts": chapter_facts.for_chapter(ch.number),
            "quiz_size": len(quizzes.QUIZZES.get(ch.number, ())),
            "previous": CHAPTERS[index - 1] if index else None,
            "next": CHAPTERS[index + 1] if index + 1 < len(CHAPTERS) else None,
        },
    )


@ensure_csrf_cookie
def playground(request, slug):
    try:
        chapter, pg = playgrounds_by_slug()[slug]
    except KeyError:
        raise Http404(f"No playground called {slug!r}") from None
    template = pg.template if pg.live else "simulations/coming.html"
    # ?embed=1: inside a chapter page's frame, without the site's header, footer and lesson link.
    embedded = request.GET.get("embed") == "1"
    return render(request, template, {"chapter": chapter, "playground": pg, "embedded": embedded})


@ensure_csrf_cookie
def train(request):
    dims = base_model.dimensions()
    encoder_params = dims.encoder_params()
    return render(
        request,
        "simulations/train.html",
        {
            "model_name": base_model.NAME,
            "dims": dims,
            "encoder_params": encoder_params,
            "upload": upload_rules(request),
        },
    )


def upload_rules(request) -> dict:
    """The rules of peftlab/api/uploads.py, as the upload panel states them, and who will see an
    upload (peftlab/classroom/access.py)."""
    from peftlab.api import uploads
    from peftlab.classroom.viewer import STUDENT, TEACHER, viewer_of

    kind = viewer_of(request).kind
    return {
        "max_mb": f"{uploads.MAX_BYTES / 1_000_000:g}",
        "max_rows": uploads.MAX_ROWS,
        "min_labels": uploads.MIN_LABELS,
        "max_labels": uploads.MAX_LABELS,
        "min_per_label": uploads.MIN_PER_LABEL,
        "max_text_chars": uploads.MAX_TEXT_CHARS,
        "max_name_chars": uploads.MAX_NAME_CHARS,
        "val_percent": round(100 * uploads.VAL_FRACTION),
        "audience": {
            STUDENT: "you and your teacher",
            TEACHER: "you and the students of your classes (upload here to share a dataset with them)",
        }.get(kind, "only you, in this browser"),
    }
