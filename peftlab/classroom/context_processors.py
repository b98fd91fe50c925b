"""The header's "class <name> · <nickname> · leave" (or the teacher's links) on every page."""

from peftlab.classroom.viewer import viewer_of


def classroom(request):
    if not hasattr(request, "session"):
        return {}
    return {"viewer": viewer_of(request)}
