"""The samples table written as the raw queries answer, in row groups of at most ``ROW_GROUP_ROWS``.

``collect`` used to keep every chunk's JSON until the whole window had arrived and then build
one frame of the window; this stream turns each chunk into arrays as it arrives, drops the
samples an earlier chunk already gave (chunks share their boundary sample: Prometheus 2.x
ranges are closed), and writes a row group whenever ``ROW_GROUP_ROWS`` samples are waiting.
Memory is bounded by a row group, not by the window.  Series ids are given in the order series
are first seen, as before; inside a row group rows are sorted by (series, time), and every
series' samples rise in time across groups (a window that fits one group is ordered exactly as
the whole-window frame was, and compresses as well: series-major runs of timestamps).

The file is built in a hidden folder under the bundle's parent (the same filesystem, so the
bundle writer moves it in with a rename); ``close()`` ends it, ``discard()`` removes it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.arrays import distinct
from evidence.bundle import arrow_schema, output_error
from evidence.model import Role, ScrapeLabels
from evidence.sources.prometheus import MAX_SAMPLE_TIME_S, TIME_TYPES, VALUE_TYPES, sample_error

#: Samples per row group: 20 bytes each in the arrays, so about 20 MB held at most.
ROW_GROUP_ROWS = 1 << 20
#: Primary request times held before they are folded into their distinct values.
PRIMARY_COMPACT = 1 << 18
_NEVER = int(np.iinfo(np.int64).min)  # before any sample time

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evidence.canary import CanarySpec
    from evidence.queries import Query


#: One series of a raw chunk, parsed: its labels as Prometheus gave them, times (int64 ms), values.
RawSeries = tuple[dict[str, Any], "np.ndarray[Any, Any]", "np.ndarray[Any, Any]"]


def parse_raw(results: list[dict[str, Any]]) -> list[RawSeries]:
    """Return a raw chunk's series as arrays: 16 bytes a sample instead of about 150 as parsed JSON.

    Stateless, so the thread that fetched the chunk runs it (``run_queries``' ``parse_raw``): the
    answers waiting for their turn are held as arrays, not as JSON lists.
    """
    out: list[RawSeries] = []
    for r in results:
        values = r.get("values") or []
        if not values:
            out.append((r.get("metric") or {}, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)))
            continue
        # A sample is [unix time, "value"]: one column of each, checked (an answer is untrusted input).
        # Every sample a list of two (zip would cut a longer one to the shortest without a word).
        columns = tuple(zip(*values)) if set(map(type, values)) == {list} and set(map(len, values)) == {2} else ()
        try:
            if len(columns) != 2:
                raise ValueError("not a [time, value] pair")
            # The types first, one pass each: no bool (float() reads true as 1.0), no null, no list.
            if not set(map(type, columns[0])) <= TIME_TYPES or not set(map(type, columns[1])) <= VALUE_TYPES:
                raise ValueError("a time that is not a number, or a value that is neither a string nor a number")
            seconds = np.array(columns[0], dtype=np.float64)
            # float() parses "NaN" and "+Inf" as Prometheus writes them, as numpy would.
            v = np.array(list(map(float, columns[1])), dtype=np.float64)
            in_range = (seconds >= 0) & (seconds < MAX_SAMPLE_TIME_S)  # False for NaN too
            if not in_range.all():
                raise ValueError("an out-of-range time")
            ts = np.rint(seconds * 1000).astype(np.int64)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond any float
            raise sample_error(values, r.get("metric") or {}) from None
        out.append((r.get("metric") or {}, ts, v))
    return out


@dataclass
class SampleStream:
    """Series rows and the samples parquet of the raw queries, fed one chunk at a time."""

    parent: Path
    spec: CanarySpec
    scrape: ScrapeLabels
    series_rows: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    row_group_rows: int = ROW_GROUP_ROWS
    primary_fold: int = PRIMARY_COMPACT
    path: Path | None = field(default=None, init=False)
    _ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = field(default_factory=dict, init=False)
    _last: dict[int, int] = field(default_factory=dict, init=False)  # series id -> its latest timestamp written (ms)
    _per_query: dict[str, int] = field(default_factory=dict, init=False)
    _primary_times: list[np.ndarray[Any, Any]] = field(default_factory=list, init=False)
    _primary_waiting: int = field(default=0, init=False)  # primary times appended since the last fold
    _waiting: list[tuple[int, np.ndarray[Any, Any], np.ndarray[Any, Any]]] = field(default_factory=list, init=False)
    _waiting_rows: int = field(default=0, init=False)
    _writer: pq.ParquetWriter | None = field(default=None, init=False)

    def add(self, q: Query, results: list[dict[str, Any]]) -> None:
        """Take one chunk's results of a raw query (chunks of a query in time order)."""
        self.add_parsed(q, parse_raw(results))

    def add_parsed(self, q: Query, parsed: list[RawSeries]) -> None:
        """Take one chunk of a raw query as ``parse_raw`` returned it (chunks of a query in time order)."""
        parts: list[tuple[int, np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        for metric, ts, v in parsed:
            sid = self._series_id(q, metric)
            if not len(ts):
                continue
            keep = ts > self._last.get(sid, _NEVER)
            if not keep.all():
                ts, v = ts[keep], v[keep]
            if len(ts):
                self._last[sid] = int(ts[-1])
                parts.append((sid, ts, v))
                self._count(sid, ts)
        self._waiting.extend(parts)
        self._waiting_rows += sum(len(p[1]) for p in parts)
        if self._waiting_rows >= self.row_group_rows:
            self._flush()

    def _count(self, sid: int, ts: np.ndarray[Any, Any]) -> None:
        row = self.series_rows[sid]
        self._per_query[row["query_id"]] = self._per_query.get(row["query_id"], 0) + len(ts)
        if row["metric"] == self.spec.router.requests and row["role"] == Role.PRIMARY:
            self._primary_times.append(ts)
            self._primary_waiting += len(ts)
            if self._primary_waiting >= self.primary_fold:
                # Only the distinct scrape times are needed (for gaps): many series share each one, so
                # the list is folded into its distinct times, bounded by the scrapes, not the samples.
                self._primary_times = [distinct(np.concatenate(self._primary_times))]
                self._primary_waiting = 0

    def _series_id(self, q: Query, metric_labels: dict[str, Any]) -> int:
        labels = {str(k): str(v) for k, v in metric_labels.items()}
        metric = labels.pop("__name__", q.promql.split("{", 1)[0])
        key = (metric, tuple(sorted(labels.items())))
        sid = self._ids.get(key)
        if sid is None:
            sid = len(self.series_rows)
            self._ids[key] = sid
            role = (
                "flagger"
                if metric.startswith("flagger_")
                else self.spec.router.role_of(labels, self.spec.apex, self.scrape.service).value
            )
            self.series_rows.append(
                {
                    "series_id": sid,
                    "metric": metric,
                    "role": role,
                    "service": labels.get(self.scrape.service),
                    "code": labels.get(self.spec.router.code_label),
                    "le": labels.get(self.spec.router.bucket_label),
                    "labels": json.dumps(dict(sorted(labels.items())), separators=(",", ":")),
                    "query_id": q.id,
                }
            )
        return sid

    def _flush(self) -> None:
        """Write the waiting samples as one row group, sorted by series (a stable sort keeps each series' time order)."""
        import pyarrow as pa

        parts, self._waiting, self._waiting_rows = self._waiting, [], 0
        if not parts:
            return
        parts.sort(key=lambda p: p[0])
        sid = np.concatenate([np.full(len(ts), s, dtype=np.int32) for s, ts, _ in parts])
        ts = np.concatenate([p[1] for p in parts])
        v = np.concatenate([p[2] for p in parts])
        del parts
        schema = arrow_schema("samples")
        table = pa.Table.from_arrays(
            [pa.array(sid, pa.int32()), pa.array(ts, pa.int64()).cast(schema.field("timestamp").type), pa.array(v, pa.float64())],
            schema=schema,
        )
        if self._writer is None:
            self._writer = self._open(schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _open(self, schema: pa.Schema) -> pq.ParquetWriter:
        import pyarrow.parquet as pq

        # Dictionary pages only for the series ids: on timestamps and values they made the file larger
        # and cost about 120 bytes of peak memory a sample (46 MB for 382 k samples).
        return pq.ParquetWriter(self._file(), schema, compression="zstd", compression_level=3, use_dictionary=["series_id"])

    def _file(self) -> Path:
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix=".samples.", suffix=".partial", dir=self.parent))
        except OSError as exc:
            raise output_error(self.parent, exc) from None
        self.path = folder / "samples.parquet"
        return self.path

    def close(self) -> Path:
        """End the file (an empty table when no chunk had samples) and return its path."""
        self._flush()
        if self._writer is None:
            import pyarrow as pa

            schema = arrow_schema("samples")
            self._writer = self._open(schema)
            self._writer.write_table(pa.Table.from_pylist([], schema=schema))
        self._writer.close()
        assert self.path is not None
        return self.path

    def discard(self) -> None:
        """Remove the file and its folder (after the bundle took it, only the empty folder is left)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError:
                pass
        if self.path is not None:
            shutil.rmtree(self.path.parent, ignore_errors=True)

    def record_counts(self, queries: list[Query]) -> None:
        """Set every raw query's series and sample counts."""
        for q in queries:
            if q.kind == "raw":
                q.series = sum(1 for row in self.series_rows if row["query_id"] == q.id)
                q.samples = self._per_query.get(q.id, 0)

    def primary_times(self) -> list[int]:
        """Return the distinct sample times (ms) of the Traefik primary request series, sorted."""
        if not self._primary_times:
            return []
        return [int(t) for t in distinct(np.concatenate(self._primary_times))]
