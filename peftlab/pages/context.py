"""What every page's template gets besides its own context."""

from simulations.methods import METHODS


def method_colours(request) -> dict:
    """Each method's colour from its record, written into every page (templates/base.html) for the
    charts to read (static/js/lab.js METHOD_COLOURS): the pages keep no colour table of their own."""
    return {"method_colours": {m.name: m.colour for m in METHODS.values()}}
