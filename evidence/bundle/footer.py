"""A parquet file's column types read from its footer alone, without pyarrow.

``evidence verify`` checks every table's columns; loading pyarrow (and numpy with it) for that
cost about 0.3 s, most of the command.  A parquet file ends with its metadata, a Thrift
compact-protocol ``FileMetaData`` struct, its length (4 bytes, little-endian) and ``PAR1``
(apache/parquet-format ``parquet.thrift``).  This reads that whole struct (a footer damaged
anywhere in its framing, or without a field the format requires, is refused) and names each
top-level column's type as pyarrow would: ``string``, ``int32``, ``int64``, ``double``,
``bool``, ``timestamp[ms, tz=UTC]``, ``list<string>``…  About 4 ms a bundle in Python (the
row groups stepped over, not built), against about 0.5 ms for pyarrow once it is loaded: a
single ``verify`` saves the 0.2 s of loading it; a store of 1,000 bundles verifies about 4 s slower.

What it cannot see: arrow details kept only in the ``ARROW:schema`` metadata, such as the
name of a timestamp's zone (a UTC-adjusted timestamp of another zone reads as
``tz=UTC`` here) or ``large_string`` against ``string``.  Reading a table for use checks its
full arrow schema (``Bundle.table``), so such a file is refused there.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_MAGIC = b"PAR1"
_MAX_FOOTER = 64 << 20  # a bundle table's footer is kilobytes; anything near this is not ours
_MAX_DEPTH = 64

# Thrift compact types.
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT, _UUID = range(14)

_PHYSICAL = {0: "bool", 1: "int32", 2: "int64", 3: "int96", 4: "float", 5: "double", 6: "binary", 7: "fixed_size_binary"}
_TIME_UNITS = {1: "ms", 2: "us", 3: "ns"}
_CONVERTED_INTS = {11: "uint8", 12: "uint16", 13: "uint32", 14: "uint64", 15: "int8", 16: "int16", 17: "int32", 18: "int64"}


class FooterError(ValueError):
    """The file is not a parquet file this reader can read."""


@dataclass(frozen=True)
class Footer:
    """A parquet file's rows and its top-level columns' types (pyarrow's names)."""

    num_rows: int
    columns: dict[str, str]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at, self.depth = data, 0, 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise FooterError("the footer ends early")
        b = self.data[self.at]
        self.at += 1
        return b

    def varint(self) -> int:
        out, shift = 0, 0
        while True:
            b = self.byte()
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7
            if shift > 70:
                raise FooterError("a number in the footer is too long")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def binary(self) -> bytes:
        n = self.varint()
        if n > len(self.data) - self.at:
            raise FooterError("a string in the footer runs past its end")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def fields(self) -> Iterator[tuple[int, int]]:
        """Yield (field id, type) of a struct's fields until its STOP."""
        last = 0
        while True:
            header = self.byte()
            kind = header & 0x0F
            if kind == _STOP:
                return
            delta = header >> 4
            last = last + delta if delta else self.zigzag()
            yield last, kind

    def value(self, kind: int) -> object:
        """Read a value of this type: ints, bools, bytes, lists; a struct is read as {id: value}."""
        if kind in (_TRUE, _FALSE):
            return kind == _TRUE
        if kind == _BYTE:
            return self.byte()
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            if self.at + 8 > len(self.data):
                raise FooterError("the footer ends early")
            (d,) = struct.unpack_from("<d", self.data, self.at)
            self.at += 8
            return d
        if kind == _BINARY:
            return self.binary()
        if kind == _UUID:
            if self.at + 16 > len(self.data):
                raise FooterError("the footer ends early")
            self.at += 16
            return self.data[self.at - 16 : self.at]
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise FooterError("the footer nests too deep")
        try:
            if kind in (_LIST, _SET):
                header = self.byte()
                size, elem = header >> 4, header & 0x0F
                if size == 15:
                    size = self.varint()
                if size > len(self.data) - self.at:
                    raise FooterError("a list in the footer is longer than the footer")
                return [self.byte() == 1 if elem in (_TRUE, _FALSE) else self.value(elem) for _ in range(size)]
            if kind == _MAP:
                size = self.varint()
                if not size:
                    return {}
                if size > len(self.data) - self.at:
                    raise FooterError("a map in the footer is longer than the footer")
                types = self.byte()
                return {_hashable(self.value(types >> 4)): self.value(types & 0x0F) for _ in range(size)}
            if kind == _STRUCT:
                return {fid: self.value(t) for fid, t in self.fields()}
        finally:
            self.depth -= 1
        raise FooterError(f"unknown Thrift type {kind} in the footer")


def _hashable(v: object) -> object:
    return repr(v) if isinstance(v, dict | list) else v


def _metadata(data: bytes) -> dict[int, object]:
    """Read the whole FileMetaData struct: a footer damaged past the schema is refused too.

    The row groups (field 4, most of a footer) are stepped over by ``_skip``: their framing and
    required fields are checked, nothing is built (four times faster than reading them).
    """
    r = _Reader(data)
    out: dict[int, object] = {}
    for fid, kind in r.fields():
        if fid == 4 and kind == _LIST:
            r.at = _skip(data, r.at, len(data), kind, _ROW_GROUP, 1)
            out[fid] = []  # checked, not kept
        else:
            out[fid] = r.value(kind)
    _required(out, "FileMetaData")
    return out


# Struct specs for _skip: field id -> (wire type, spec of the struct it holds or its list holds, required).
_Spec = dict[int, tuple[int, "_Spec | None", bool]]
_COLUMN_META: _Spec = {
    f: (w, None, True) for f, w in ((1, _I32), (2, _LIST), (3, _LIST), (4, _I32), (5, _I64), (6, _I64), (7, _I64), (9, _I64))
}
_COLUMN_CHUNK: _Spec = {2: (_I64, None, True), 3: (_STRUCT, _COLUMN_META, False)}
_ROW_GROUP: _Spec = {1: (_LIST, _COLUMN_CHUNK, True), 2: (_I64, None, True), 3: (_I64, None, True)}


def _varint_end(data: bytes, i: int, n: int) -> int:
    while True:
        if i >= n:
            raise FooterError("the footer ends early")
        b = data[i]
        i += 1
        if not b & 0x80:
            return i


def _varint(data: bytes, i: int, n: int) -> tuple[int, int]:
    out, shift = 0, 0
    while True:
        if i >= n:
            raise FooterError("the footer ends early")
        b = data[i]
        i += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, i
        shift += 7
        if shift > 70:
            raise FooterError("a number in the footer is too long")


def _skip(data: bytes, i: int, n: int, kind: int, spec: _Spec | None, depth: int) -> int:
    """Return where a value of this wire type ends; a struct (or a list's structs) is checked against ``spec``."""
    if depth > _MAX_DEPTH:
        raise FooterError("the footer nests too deep")
    if kind in (_TRUE, _FALSE):
        return i
    if kind in (_I16, _I32, _I64):
        return _varint_end(data, i, n)
    if kind in (_BYTE, _DOUBLE, _UUID):
        i += 1 if kind == _BYTE else 8 if kind == _DOUBLE else 16
    elif kind == _BINARY:
        length, i = _varint(data, i, n)
        i += length
    elif kind in (_LIST, _SET):
        if i >= n:
            raise FooterError("the footer ends early")
        size, elem = data[i] >> 4, data[i] & 0x0F
        i += 1
        if size == 15:
            size, i = _varint(data, i, n)
        if size > n - i:
            raise FooterError("a list in the footer is longer than the footer")
        if elem in (_TRUE, _FALSE, _BYTE):
            i += size
        else:
            for _ in range(size):
                i = _skip(data, i, n, elem, spec, depth + 1)
    elif kind == _MAP:
        size, i = _varint(data, i, n)
        if size:
            if size > n - i:
                raise FooterError("a map in the footer is longer than the footer")
            types = data[i]
            i += 1
            for _ in range(size):
                i = _skip(data, i, n, types >> 4, None, depth + 1)
                i = _skip(data, i, n, types & 0x0F, None, depth + 1)
    elif kind == _STRUCT:
        seen: set[int] = set()
        last = 0
        while True:
            if i >= n:
                raise FooterError("the footer ends early")
            header = data[i]
            i += 1
            t = header & 0x0F
            if t == _STOP:
                break
            if header >> 4:
                last += header >> 4
            else:
                z, i = _varint(data, i, n)
                last = (z >> 1) ^ -(z & 1)
            want = spec.get(last) if spec else None
            if want is not None and want[0] == t:
                seen.add(last)
            if t in (_I16, _I32, _I64):  # most fields: inline, without a call per field
                while True:
                    if i >= n:
                        raise FooterError("the footer ends early")
                    i += 1
                    if not data[i - 1] & 0x80:
                        break
            elif t not in (_TRUE, _FALSE):
                i = _skip(data, i, n, t, want[1] if want is not None and want[0] == t else None, depth + 1)
        if spec:
            missing = [f for f, (_, _, required) in spec.items() if required and f not in seen]
            if missing:
                raise FooterError(f"its footer's row groups lack required field {missing[0]}")
    else:
        raise FooterError(f"unknown Thrift type {kind} in the footer")
    if i > n:
        raise FooterError("the footer ends early")
    return i


# The fields parquet.thrift marks required in the structs read as values, with their types
# (i: integer, b: binary, l: list) and the struct a list holds: a reader refuses a footer without them.
_REQUIRED: dict[str, dict[int, tuple[str, str | None]]] = {
    "FileMetaData": {1: ("i", None), 2: ("l", "SchemaElement"), 3: ("i", None), 4: ("l", None)},  # 4: _skip checks it
    "SchemaElement": {4: ("b", None)},
    "KeyValue": {1: ("b", None)},
}
_OPTIONAL_STRUCTS = {"FileMetaData": {5: "KeyValue"}}
_KINDS = {"i": int, "b": bytes, "l": list}


def _required(node: dict[int, object], struct_name: str) -> None:
    """Raise FooterError when a struct lacks a required field or holds it with the wrong type."""
    for fid, (kind, items) in _REQUIRED[struct_name].items():
        value = node.get(fid)
        if not isinstance(value, _KINDS[kind]) or isinstance(value, bool):
            raise FooterError(f"its footer's {struct_name} lacks its required field {fid}")
        if items:
            for item in value if isinstance(value, list) else []:
                if not isinstance(item, dict):
                    raise FooterError(f"its footer's {struct_name} field {fid} holds something other than {items}")
                _required(item, items)
    for fid, name in _OPTIONAL_STRUCTS.get(struct_name, {}).items():
        value = node.get(fid)
        for item in value if isinstance(value, list) else [value] if value is not None else []:
            if not isinstance(item, dict):
                raise FooterError(f"its footer's {struct_name} field {fid} is not a {name}")
            _required(item, name)


def read_footer(path: Path) -> Footer:
    """Return a parquet file's row count and top-level column types; raise FooterError if it is not readable."""
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        if size < 12:
            raise FooterError(f"{size} bytes is too short for a parquet file")
        f.seek(0)
        if f.read(4) != _MAGIC:
            raise FooterError("it does not start with PAR1")
        f.seek(size - 8)
        tail = f.read(8)
        if tail[4:] != _MAGIC:
            raise FooterError("it does not end with PAR1" + (" (an encrypted footer)" if tail[4:] == b"PARE" else ""))
        (length,) = struct.unpack("<I", tail[:4])
        if length > size - 12 or length > _MAX_FOOTER:
            raise FooterError(f"its footer length ({length} bytes) does not fit the file ({size} bytes)")
        f.seek(size - 8 - length)
        meta = _metadata(f.read(length))
    elements = meta.get(2)
    rows = meta.get(3)
    if not isinstance(elements, list) or not elements or not all(isinstance(e, dict) for e in elements):
        raise FooterError("its footer holds no schema")
    if not isinstance(rows, int):
        raise FooterError("its footer holds no row count")
    _check_arrow_schema(meta.get(5))
    columns: dict[str, str] = {}
    at = 1
    root_children = elements[0].get(5, 0)
    for _ in range(root_children if isinstance(root_children, int) else 0):
        name, kind, at = _column(elements, at, 0)
        columns[name] = kind
    if at != len(elements):
        raise FooterError("its footer's schema tree does not match its element count")
    return Footer(rows, columns)


def _check_arrow_schema(pairs: object) -> None:
    """Check the framing of pyarrow's ``ARROW:schema`` key: base64 of an IPC message that fits (not its flatbuffer)."""
    for kv in pairs if isinstance(pairs, list) else []:
        if not isinstance(kv, dict) or kv.get(1) != b"ARROW:schema":
            continue
        value = kv.get(2)
        try:
            blob = base64.b64decode(value if isinstance(value, bytes) else b"", validate=True)
        except (binascii.Error, ValueError):
            raise FooterError("its ARROW:schema metadata is not base64") from None
        at = 4 if blob[:4] == b"\xff\xff\xff\xff" else 0
        length = int.from_bytes(blob[at : at + 4], "little", signed=True) if len(blob) >= at + 4 else -1
        if length <= 0 or at + 4 + length > len(blob):
            raise FooterError("its ARROW:schema metadata is cut or damaged")


def _column(elements: list[dict[int, object]], at: int, depth: int) -> tuple[str, str, int]:
    """Return (name, type, next index) of the schema node at ``at`` and its subtree."""
    if at >= len(elements) or depth > _MAX_DEPTH:
        raise FooterError("its footer's schema tree is cut short")
    e = elements[at]
    raw_name = e.get(4)
    name = raw_name.decode("utf-8", "replace") if isinstance(raw_name, bytes) else "?"
    children = e.get(5)
    if isinstance(children, int) and children > 0:
        kinds, nxt = [], at + 1
        for _ in range(children):
            _, kind, nxt = _column(elements, nxt, depth + 1)
            kinds.append(kind)
        return name, _group_type(e, kinds), nxt
    return name, _leaf_type(e), at + 1


def _group_type(e: dict[int, object], kinds: list[str]) -> str:
    logical = e.get(10)
    is_list = e.get(6) == 3 or (isinstance(logical, dict) and 3 in logical)
    if is_list and len(kinds) == 1:
        inner = kinds[0]
        # LIST's middle level is ``repeated group list { element }``: its one child is the item type.
        return f"list<{inner[len('group<') : -1] if inner.startswith('group<') and ',' not in inner else inner}>"
    return "group<" + ", ".join(kinds) + ">"


def _leaf_type(e: dict[int, object]) -> str:
    physical = e.get(1)
    base = _PHYSICAL.get(physical if isinstance(physical, int) else -1, f"type {physical}")
    logical = e.get(10)
    converted = e.get(6)
    if isinstance(logical, dict) and logical:
        (which, detail), *_ = logical.items()
        if which in (1, 4, 12):  # STRING, ENUM, JSON
            return "string"
        if which == 8 and isinstance(detail, dict):  # TIMESTAMP
            unit_union = detail.get(2)
            unit = _TIME_UNITS.get(next(iter(unit_union), 0), "?") if isinstance(unit_union, dict) and unit_union else "?"
            return f"timestamp[{unit}, tz=UTC]" if detail.get(1) is True else f"timestamp[{unit}]"
        if which == 10 and isinstance(detail, dict):  # INTEGER
            width, signed = detail.get(1), detail.get(2)
            return f"{'' if signed is True else 'u'}int{width}"
        if which == 6:
            return "date32"
        return f"{base} (logical type {which})"
    if converted == 0:
        return "string"
    if converted in (9, 10):
        return f"timestamp[{'ms' if converted == 9 else 'us'}, tz=UTC]"
    if isinstance(converted, int) and converted in _CONVERTED_INTS:
        return _CONVERTED_INTS[converted]
    return base
