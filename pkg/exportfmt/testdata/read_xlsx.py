"""Dump an XLSX file as JSON with openpyxl, an independent reader, for xlsx_test.go.

Usage: python3 read_xlsx.py FILE.xlsx  (prints {"sheets": [...]})
read_only_width is the widest row openpyxl's read-only mode sees. Each cell is {"v": value, "t": python type name, "f": number format, "b": bold}; an empty
cell is null. Dates are ISO 8601 text.
"""
import datetime
import json
import sys

import openpyxl


def cell(c):
    if c.value is None:
        return None
    v = c.value
    if isinstance(v, datetime.datetime):
        v = v.isoformat()
    return {"v": v, "t": type(c.value).__name__, "f": c.number_format, "b": bool(c.font and c.font.b),
            "fill": (c.fill.fgColor.rgb if c.fill and c.fill.fill_type == "solid" else None)}


def main():
    wb = openpyxl.load_workbook(sys.argv[1])
    sheets = []
    for ws in wb.worksheets:
        widths = {k: d.width for k, d in ws.column_dimensions.items() if d.customWidth}
        sheets.append({
            "name": ws.title,
            "freeze": ws.freeze_panes,
            "autofilter": ws.auto_filter.ref,
            "widths": widths,
            "rows": [[cell(c) for c in row] for row in ws.iter_rows()],
        })
    # Read-only mode (pandas uses it) trusts the sheet's <dimension> if there is one.
    ro = openpyxl.load_workbook(sys.argv[1], read_only=True)
    for s in sheets:
        s["read_only_width"] = max((len(r) for r in ro[s["name"]].iter_rows(values_only=True)), default=0)
    json.dump({"sheets": sheets}, sys.stdout)


main()
