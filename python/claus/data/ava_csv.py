"""Rows of an AVA-style CSV (video, time or frame, x1, y1, x2, y2, label[, track]), shared by the
dataset importer (`claus.data.custom`) and the annotation importer (`claus.annotation.ava`)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path


def ava_rows(path: str | Path, error: type[Exception], time_name: str = "time",
             columns: tuple[int, ...] | None = None
             ) -> Iterator[tuple[int, list[str], float, list[float]]]:
    """Yield (line number, row, time, [x1, y1, x2, y2]) of every data row.

    Blank rows are skipped, and so is a first row whose time or box is not numeric (a header).

    Args:
        path: the CSV file (UTF-8).
        error: exception class raised for a malformed row, with the file and line in its message.
        time_name: what the second column holds ("time", "frame"), for messages.
        columns: the accepted column counts; None = at least 8 (extra columns ignored).
    """
    with open(path, newline="", encoding="utf-8") as fh:
        for ln, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if (len(row) < 8) if columns is None else (len(row) not in columns):
                raise error(f"{path}:{ln}: expected 8 columns (video, {time_name}, x1, y1, x2, "
                            f"y2, label, track), got {len(row)}")
            try:
                t = float(row[1])
                box = [float(x) for x in row[2:6]]
            except ValueError:
                if ln == 1:
                    continue  # header
                raise error(f"{path}:{ln}: {time_name} and box must be numbers: "
                            f"{row[:6]}") from None
            yield ln, row, t, box
