"""Templates of the report (package data in ``rlmu/report/templates/``) and the plain data they are fed.

Python never writes markup: it turns a DataFrame into ``table_data`` (column names, rows of cell texts
and CSS classes) and a line of text into ``segments`` (text with emphasis), and the templates' macros
(``macros.html.j2``, ``macros.md.j2``) build the HTML and Markdown from them. HTML is autoescaped.
"""

from __future__ import annotations

import functools

import jinja2
import numpy as np
import pandas as pd

__all__ = ["bold", "environment", "plain", "segments_text", "table_data", "to_markdown"]


def _cell_text(v, digits: int) -> str:
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, float | np.floating):
        return "" if np.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def table_data(df: pd.DataFrame, digits: int = 3, row_class=None, cell_class=None) -> dict:
    """``{"columns": [...], "rows": [{"cls": str, "cells": [{"text": str, "cls": str}]}]}`` for the
    ``table`` macros. Floats are rounded to ``digits`` (NaN: empty); numbers get the ``num`` class;
    ``row_class(row) -> str`` and ``cell_class(column) -> list[str]`` add classes."""
    rows = []
    for i, row in enumerate(df.itertuples(index=False)):
        cells = []
        for c, v in zip(df.columns, row, strict=True):
            classes = (["num"] if _is_number(v) else []) + (list(cell_class(c)) if cell_class else [])
            cells.append({"text": _cell_text(v, digits), "cls": " ".join(classes)})
        rows.append({"cls": row_class(df.iloc[i]) if row_class else "", "cells": cells})
    return {"columns": [str(c) for c in df.columns], "rows": rows}


def bold(text: str) -> dict:
    return {"text": str(text), "bold": True}


def plain(text: str) -> dict:
    return {"text": str(text), "bold": False}


def segments_text(segments) -> str:
    """The text of a line of segments, without emphasis."""
    return "".join(s["text"] for s in segments)


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


@functools.cache
def environment() -> jinja2.Environment:
    """The report's template environment: HTML templates autoescaped, Markdown ones not."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rlmu.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["md_cell"] = _md_cell
    return env


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table; floats rounded to ``digits`` decimals."""
    module = environment().get_template("macros.md.j2").module
    return str(module.table(table_data(df, digits)))
