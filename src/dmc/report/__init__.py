"""HTML + Markdown report of a validation run, with plots (matplotlib, Agg backend)."""

from dmc.report.compare import compare_markdown, write_comparison
from dmc.report.load import RunResults, load_run
from dmc.report.writer import HTML_FILE, IMAGES_DIR, MD_FILE, ReportPaths, write_report

__all__ = ["compare_markdown", "write_comparison", "HTML_FILE", "IMAGES_DIR", "MD_FILE", "ReportPaths", "RunResults", "load_run", "write_report"]
