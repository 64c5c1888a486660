"""Sphinx extension of the course site: load MathJax on every page.

Sphinx adds MathJax only to pages that contain math, but chapter titles with math
(``$\\sqrt{d}$``) appear in the navigation of every page, where they would stay raw TeX.
Listed in ``book/_config.yml`` (``sphinx.local_extensions``).
"""

from __future__ import annotations

from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict[str, bool]:
    """Register the extension: the HTML assets (MathJax among them) go on every page."""
    app.set_html_assets_policy("always")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
