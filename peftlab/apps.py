from django.contrib.staticfiles import finders
from django.contrib.staticfiles.apps import StaticFilesConfig
from django.core import checks

# The one Plotly every chart loads: the npm package's bundle (settings.STATICFILES_DIRS).
PLOTLY = "vendor/plotly/plotly-cartesian.min.js"


class StaticFiles(StaticFilesConfig):
    """Static files, less the npm package's own README and package.json beside Plotly's bundle."""

    ignore_patterns = [*StaticFilesConfig.ignore_patterns, "README.md", "package.json"]

    def ready(self):
        super().ready()
        checks.register(plotly_installed, checks.Tags.staticfiles)


def plotly_installed(app_configs=None, **kwargs):
    """Without Plotly's bundle every page loads and no chart draws: say so at start-up."""
    if finders.find(PLOTLY):
        return []
    return [
        checks.Error(
            f"Plotly's bundle ({PLOTLY}) is not installed",
            hint="run `make setup`: its `npm ci` installs the version pinned in package-lock.json",
            id="peftlab.E002",
        )
    ]
