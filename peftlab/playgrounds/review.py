"""The review chapter's data: the quizzes (P21) and the cheat sheet (P22)."""

from ninja import Router

from peftlab.pages.chapters import CHAPTERS
from simulations import cheatsheet, quizzes
from workers import base_model

router = Router(tags=["playgrounds"])


@router.get("/quiz", response={200: list}, summary="P21: a quiz per chapter, with an explanation for every choice")
def quiz(request):
    titles = {str(ch.number): ch.title for ch in CHAPTERS}
    return [{"chapter": int(n), "title": titles[n], "questions": qs} for n, qs in quizzes.as_json().items()]


@router.get("/cheat-sheet", response={200: list}, summary="P22: the formulas to remember, with worked examples")
def cheat_sheet(request):
    return cheatsheet.rows(base_model.dimensions())
