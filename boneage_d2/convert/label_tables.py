"""Label tables as the RSNA files come: .csv (any of , ; tab, UTF-8 or Latin-1) or .xlsx, read
into header cells and numbered data rows, before any RSNA meaning is given to the columns."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from .input_problems import BadRow, RSNAFormatError

__all__ = ["read_table"]


def _cell_text(value: Any) -> str:
    """Spreadsheet/CSV cell as trimmed text (xlsx numbers and booleans rendered like a CSV)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value).strip()


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            with open(path, newline="", encoding=encoding) as f:
                text = f.read()
            break
        except UnicodeDecodeError:
            continue
    # Lines end at \n, \r\n or \r only, as in a text editor; str.splitlines would also break at
    # \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029 inside a cell and shift every later row number.
    lines = io.StringIO(text, newline="").readlines()
    delimiter = _sniff_delimiter(next((ln for ln in lines if ln.strip()), ""))
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    for record in reader:
        if not any(c.strip() for c in record):
            continue
        if header is None:
            header, header_line = record, reader.line_num
        else:
            rows.append((reader.line_num - header_line, [c.strip() for c in record]))
    return header or [], rows


def _read_xlsx_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        header: list[str] | None = None
        header_row = 0
        rows: list[tuple[int, list[str]]] = []
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if not any(cells):
                continue
            if header is None:
                header, header_row = cells, number
            else:
                rows.append((number - header_row, cells))
    finally:
        wb.close()
    return header or [], rows


def read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header cells and ``(data row number, cells)`` per non-empty row of a .csv/.xlsx file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            return _read_xlsx_rows(path)
        if suffix == ".xls":
            raise RSNAFormatError(
                BadRow(path.name, 0, "-", "old .xls workbooks are not supported; save as .xlsx")
            )
        return _read_csv_rows(path)
    except RSNAFormatError:
        raise
    except Exception as e:  # zip/openpyxl/csv errors: the file as a whole is unreadable
        raise RSNAFormatError(
            BadRow(path.name, 0, "-", f"unreadable label file ({type(e).__name__}: {e})")
        ) from e
