"""The report layer: plots, tables, statements in words, and the report writer.

Numbers come from the analysis layer as DataFrames; everything here presents them.
:func:`write_report` runs every analysis and its sensitivity analyses and writes the
report directory (``hccmeta report``). Importing this package stays light: matplotlib,
PyMC and jinja2 are imported by the functions that need them.
"""

from hccmeta.report.writer import ReportSummary, write_report

__all__ = ["ReportSummary", "write_report"]
