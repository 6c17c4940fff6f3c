"""Read the row count of a parquet file from its footer, in Python (no Spark job, no pyarrow).

A parquet file ends with its metadata (a Thrift ``FileMetaData`` struct in the compact protocol), the
metadata's length (4 bytes, little-endian) and the magic ``PAR1``. ``FileMetaData`` holds the number of
rows as field 3 (``num_rows``, an i64), after the format version (field 1) and the schema (field 2). This
reads the footer and walks the struct, skipping what it does not need.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

__all__ = ["parquet_row_count"]

_MAGIC = b"PAR1"
#: Footers longer than this are not read (Spark's are a few KB; a damaged length field must not make us
#: read gigabytes).
_MAX_FOOTER = 64 * 1024 * 1024

# Thrift compact protocol types.
_BOOL_TRUE, _BOOL_FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)


class _Malformed(ValueError):
    """The footer is not what a parquet writer writes."""


def parquet_row_count(path: Path | str) -> int | None:
    """The number of rows a parquet file's footer records, or ``None`` when it has no readable footer."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 12:
                return None
            fh.seek(size - 8)
            tail = fh.read(8)
            length = struct.unpack("<I", tail[:4])[0]
            if tail[4:] != _MAGIC or length > min(size - 12, _MAX_FOOTER):
                return None
            fh.seek(size - 8 - length)
            footer = fh.read(length)
        return _Reader(footer).num_rows()
    except (OSError, _Malformed, IndexError, struct.error):
        return None


class _Reader:
    """Just enough of Thrift's compact protocol to find ``FileMetaData.num_rows``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def num_rows(self) -> int:
        last = 0
        while True:
            field, kind, last = self._field_header(last)
            if kind == 0:
                raise _Malformed("no num_rows")
            if field == 3:
                if kind != _I64:
                    raise _Malformed(f"num_rows has type {kind}")
                return self._zigzag(self._varint())
            self._skip(kind)

    def _byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def _varint(self) -> int:
        result = shift = 0
        while True:
            byte = self._byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise _Malformed("varint too long")

    @staticmethod
    def _zigzag(value: int) -> int:
        return (value >> 1) ^ -(value & 1)

    def _field_header(self, last: int) -> tuple[int, int, int]:
        """``(field id, type, field id)``; type 0 is the end of the struct."""
        byte = self._byte()
        kind, delta = byte & 0x0F, byte >> 4
        if kind == 0:
            return 0, 0, last
        field = last + delta if delta else self._zigzag(self._varint())
        return field, kind, field

    def _skip(self, kind: int) -> None:
        if kind in (_BOOL_TRUE, _BOOL_FALSE):
            return  # a boolean field's value is its type
        if kind == _BYTE:
            self.pos += 1
        elif kind in (_I16, _I32, _I64):
            self._varint()
        elif kind == _DOUBLE:
            self.pos += 8
        elif kind == _BINARY:
            length = self._varint()  # (not ``self.pos += self._varint()``: that adds to the position before the read)
            self.pos += length
        elif kind in (_LIST, _SET):
            header = self._byte()
            count, element = header >> 4, header & 0x0F
            if count == 15:
                count = self._varint()
            for _ in range(count):
                if element in (_BOOL_TRUE, _BOOL_FALSE):
                    self.pos += 1  # booleans in a list take a byte each
                else:
                    self._skip(element)
        elif kind == _MAP:
            count = self._varint()
            if count:
                types = self._byte()
                for _ in range(count):
                    self._skip_value(types >> 4)
                    self._skip_value(types & 0x0F)
        elif kind == _STRUCT:
            last = 0
            while True:
                _, inner, last = self._field_header(last)
                if inner == 0:
                    return
                self._skip(inner)
        else:
            raise _Malformed(f"unknown type {kind}")
        if self.pos > len(self.data):
            raise _Malformed("truncated")

    def _skip_value(self, kind: int) -> None:
        """Skip a map key or value (booleans there take a byte, like in lists)."""
        if kind in (_BOOL_TRUE, _BOOL_FALSE):
            self.pos += 1
        else:
            self._skip(kind)
