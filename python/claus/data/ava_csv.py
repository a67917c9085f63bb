"""AVA-style CSV files (video, time or frame, x1, y1, x2, y2, label[, track]), shared by the
dataset importer (`claus.data.custom`) and the annotation importer (`claus.annotation.ava`).

A file is read one row at a time (`ava_rows`) and kept as compact columns (`read_ava_columns`):
typed arrays grown in place, 48 bytes a row, never a Python object per row, so a 54 MB file of a
million rows holds about 45 MB however many videos and tracks it names.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
            # All cells blank <=> their concatenation is whitespace only (one C-level call).
            if not row or not "".join(row).strip():
                continue
            if (len(row) < 8) if columns is None else (len(row) not in columns):
                raise error(f"{path}:{ln}: expected 8 columns (video, {time_name}, x1, y1, x2, "
                            f"y2, label, track), got {len(row)}")
            try:
                t = float(row[1])
                box = [float(row[2]), float(row[3]), float(row[4]), float(row[5])]
            except ValueError:
                if ln == 1:
                    continue  # header
                raise error(f"{path}:{ln}: {time_name} and box must be numbers: "
                            f"{row[:6]}") from None
            yield ln, row, t, box


@dataclass
class AvaColumns:
    """Every data row of an AVA-style file as columns (n rows, in file order).

    Attributes:
        path: the file.
        keys: the distinct (video, label, track) of the rows, stripped, in order of first
            appearance; track is "" when the row has no 8th column.
        key: (n,) int32, each row's index into `keys`.
        time: (n,) float64, the second column (time or frame) as written; None once a reader
            has converted it (`drop_time`).
        box: (n, 4) float64, x1, y1, x2, y2 as written.
        line: (n,) int32, each row's line number (1-based, as `ava_rows` counts), or None when
            not kept (`line_of` then reads the file again).
    """

    path: Path
    keys: list[tuple[str, str, str]]
    key: np.ndarray
    time: np.ndarray | None
    box: np.ndarray
    line: np.ndarray | None

    def __len__(self) -> int:
        return len(self.key)

    def line_of(self, i: int, error: type[Exception] = ValueError) -> int:
        """The line number of row i."""
        if self.line is not None:
            return int(self.line[i])
        for j, (ln, *_) in enumerate(ava_rows(self.path, error)):
            if j == i:
                return ln
        raise IndexError(f"{self.path} has no data row {i}")

    def drop_time(self) -> None:
        """Let the time column go (a reader that has its frames needs it no longer)."""
        self.time = None


def read_ava_columns(path: str | Path, error: type[Exception], time_name: str = "time",
                     columns: tuple[int, ...] | None = None, lines: bool = True) -> AvaColumns:
    """Read a whole file into `AvaColumns` (arguments as `ava_rows`, which checks each row;
    `lines`: keep each row's line number)."""
    keys: dict[tuple[str, str, str], int] = {}
    # array.array grows in place (realloc), so a column never exists twice while it grows.
    key, time, box, line = array("i"), array("d"), array("d"), array("i")
    key_add, time_add, box_add, line_add = key.append, time.append, box.extend, line.append
    for ln, row, t, b in ava_rows(path, error, time_name, columns):
        k = (row[0].strip(), row[6].strip(), row[7].strip() if len(row) > 7 else "")
        idx = keys.get(k)
        if idx is None:
            idx = keys[k] = len(keys)
        key_add(idx)
        time_add(t)
        box_add(b)
        if lines:
            line_add(ln)
    # Zero-copy views of the arrays' buffers (numpy keeps the arrays alive).
    return AvaColumns(Path(path), list(keys), np.frombuffer(key, np.int32),
                      np.frombuffer(time, np.float64),
                      np.frombuffer(box, np.float64).reshape(-1, 4),
                      np.frombuffer(line, np.int32) if lines else None)


def csv_row(path: str | Path, line: int) -> list[str]:
    """The cells of record `line` (1-based, as `ava_rows` counts): for a message about it."""
    with open(path, newline="", encoding="utf-8") as fh:
        for ln, row in enumerate(csv.reader(fh), start=1):
            if ln == line:
                return row
    raise IndexError(f"{path} has no line {line}")


def boxes_json(boxes: np.ndarray) -> str:
    """`json.dumps([[round(float(x), 2) for x in b] for b in boxes])`, fast.

    '%.2f' rounds exactly as `round(x, 2)` does (both correctly rounded from the binary value),
    and Python's repr of the result is that text without a trailing zero past the first
    decimal while the text has at most 15 significant digits (|x| < 1e13: every such decimal
    is told apart by a float); larger values take the slow way.

    Args:
        boxes: (n, 4) float64 (any finite values).
    """
    b = np.asarray(boxes, np.float64)
    if not len(b) or not np.all(np.abs(b) < 1e13):
        import json

        return json.dumps([[round(float(x), 2) for x in r] for r in b])
    text = ", ".join(["[%.2f, %.2f, %.2f, %.2f]"] * len(b)) % tuple(b.ravel().tolist())
    # Every number ends in its second decimal and is followed by "," or "]": a zero there is
    # the one repr leaves out ('12.50' -> '12.5', '12.00' -> '12.0').
    return "[" + text.replace("0,", ",").replace("0]", "]") + "]"
