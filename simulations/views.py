"""HTML pages: the chapter list, each playground, and the training page."""
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from workers import base_model

from . import params
from .chapters import CHAPTERS, playgrounds_by_slug


@ensure_csrf_cookie
def home(request):
    return render(request, "simulations/home.html", {"chapters": CHAPTERS})


@ensure_csrf_cookie
def playground(request, slug):
    try:
        chapter, pg = playgrounds_by_slug()[slug]
    except KeyError:
        raise Http404(f"No playground called {slug!r}") from None
    template = pg.template if pg.live else "simulations/coming.html"
    return render(request, template, {"chapter": chapter, "playground": pg})


@ensure_csrf_cookie
def train(request):
    dims = base_model.dimensions()
    encoder_params = params.bert_encoder_params(
        dims.vocab, dims.max_positions, dims.token_types, dims.hidden, dims.intermediate, dims.layers)
    return render(request, "simulations/train.html", {
        "model_name": base_model.NAME, "dims": dims, "encoder_params": encoder_params})
