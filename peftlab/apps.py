from django.contrib.staticfiles.apps import StaticFilesConfig


class StaticFiles(StaticFilesConfig):
    """Static files, less what Plotly's package ships beside its bundle (the Jupyter widget's
    4.8 MB bundle, sample datasets, templates): the lab serves plotly.min.js alone."""

    ignore_patterns = [*StaticFilesConfig.ignore_patterns, "widgetbundle.js", "datasets", "templates"]
