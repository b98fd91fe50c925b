"""P18 Decision tree endpoint: the whole tree, the sources' scenario table, and the path for the
answers given in the query (?q1=yes&q2=no...)."""

from django.http import HttpRequest
from ninja import Router

from peftlab.api.errors import Error
from simulations import decision

router = Router(tags=["playgrounds"])

# The answers come as ?q1=yes&q2=no..., one optional parameter per question; any other parameter
# or answer is refused with 400 (decision.validate).
QUESTION_PARAMETERS = [
    {
        "name": key,
        "in": "query",
        "required": False,
        "description": question["text"],
        "schema": {"type": "string", "enum": list(decision.ANSWERS)},
    }
    for key, question in decision.QUESTIONS.items()
]


@router.get(
    "/decision-tree",
    response={200: dict, 400: Error},
    openapi_extra={"parameters": QUESTION_PARAMETERS},
    summary="The method decision tree, the path for the given answers, "
    "and the sources' scenarios with the tree's recommendation",
)
def decision_tree(request: HttpRequest):
    answers = {k: v for k, v in request.GET.items()}
    result = decision.recommend(answers)
    return {"tree": decision.tree(), "result": result, "scenarios": decision.scenario_table()}
