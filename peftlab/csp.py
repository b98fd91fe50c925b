"""The Content-Security-Policy header, on every response in every mode (embedded and production).

Scripts, styles, images, fonts, frames and API calls all come from the lab itself: Plotly is served
from our own static files (settings.STATICFILES_DIRS), never a CDN. The templates carry no inline
script and no inline event handler (onclick=...), and nothing evaluates strings as code, so
script-src is 'self' alone.
"""

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # Inline styles are allowed because Plotly needs them, as measured in Chromium under
        # style-src 'self': on load it adds its own rules (chart layering, the mode bar) as a <style>
        # element (style-src-elem), and it draws heatmaps as <image> elements whose style attribute
        # it sets through d3 (style-src-attr: pixelated rendering). Blocked, every chart draws
        # broken. The templates' style="..." attributes and <style> blocks then need no rewrite.
        "style-src 'self' 'unsafe-inline'",
        # Plotly draws each heatmap as an <image> with a data: URL, and its mode bar's "Download plot
        # as a PNG" loads the chart's SVG from a blob: URL (both measured: blocked without them).
        "img-src 'self' data: blob:",
        "font-src 'self'",
        # fetch() to the API and the EventSource streams of runs and races.
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        # Chapter pages frame their playgrounds (same origin; X_FRAME_OPTIONS says the same to older
        # browsers); no other site may frame the lab.
        "frame-ancestors 'self'",
        "frame-src 'self'",
    )
)

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Adds the policy to each response that has none of its own (MiddlewareMixin: for sync and
    async views alike, the event streams being async)."""

    def process_response(self, request, response):
        # Django's own error pages under DEBUG (the traceback, the URL list) use inline scripts.
        if not (settings.DEBUG and response.status_code >= 400):
            response.headers.setdefault(HEADER, POLICY)
        return response
