"""The report layer: plots, tables, statements in words, and the report writer.

Numbers come from the analysis layer as DataFrames; everything here presents them.
"""
