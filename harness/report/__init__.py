"""reports/index.html and reports/history.jsonl: what a run writes for people to read."""

from harness.report.page import render_report_html, write_reports

__all__ = ["render_report_html", "write_reports"]
