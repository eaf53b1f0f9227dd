#!/usr/bin/env python3
"""Dump an XLSX workbook as JSON, read by openpyxl: a reader independent of the excelize
library that wrote it. Used by the end-to-end tests (formats_test.go).

    xlsx_dump.py FILE.xlsx

Prints one JSON object: {"sheets": [...]} in workbook order, each sheet with
  name, max_row, max_column, freeze_panes, auto_filter (the ref or null),
  header (values of row 1), header_bold (bold flag of each header cell),
  formats (per column, the sorted distinct number formats of its non-empty data cells),
  rows (every data row, each cell a [type, value] pair: type one of none, bool, int, float,
  datetime, str; a datetime rounded to the second as "YYYY-MM-DDTHH:MM:SS").
"""
import datetime
import json
import sys

import openpyxl


def cell(value):
    if value is None:
        return ["none", None]
    if isinstance(value, bool):  # before int: bool is an int in Python
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["float", value]
    if isinstance(value, datetime.datetime):
        # A date-time is a fraction of a day in the file; reading it back may land a
        # microsecond off, so round to the second, the precision the export writes.
        value = (value + datetime.timedelta(microseconds=500000)).replace(microsecond=0)
        return ["datetime", value.strftime("%Y-%m-%dT%H:%M:%S")]
    if isinstance(value, (datetime.date, datetime.time)):
        return [type(value).__name__, value.isoformat()]
    return ["str", str(value)]


def main(path):
    wb = openpyxl.load_workbook(path)  # not read_only: panes and filters need the full model
    out = []
    for ws in wb.worksheets:
        header = [c.value for c in ws[1]] if ws.max_row >= 1 else []
        bold = [bool(c.font and c.font.b) for c in ws[1]] if ws.max_row >= 1 else []
        formats = [set() for _ in range(ws.max_column)]
        rows = []
        for r in ws.iter_rows(min_row=2):
            row = []
            for i, c in enumerate(r):
                if c.value is not None:
                    formats[i].add(c.number_format)
                row.append(cell(c.value))
            rows.append(row)
        out.append({
            "name": ws.title,
            "max_row": ws.max_row,
            "max_column": ws.max_column,
            "freeze_panes": ws.freeze_panes,
            "auto_filter": ws.auto_filter.ref,
            "header": header,
            "header_bold": bold,
            "formats": [sorted(f) for f in formats],
            "rows": rows,
        })
    json.dump({"sheets": out}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: xlsx_dump.py FILE.xlsx")
    main(sys.argv[1])
