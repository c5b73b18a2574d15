"""The pure-Python core of the resolution tiers (``perfwatch.metrics.tiers``): every numeric
leaf of a document under the path a query names it by, bucket statistics with their ``last``
semantics, merging minutes into hours as if the hour's documents had been added one by one, the
stored JSON form, and tier rows turned into the series' buckets."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from perfwatch.bootstrap.demo_documents import GENERATORS
from perfwatch.metrics.buckets import epoch_seconds
from perfwatch.metrics.fields import (
    MAX_FIELD_PATH_DEPTH,
    MAX_FIELD_PATH_LENGTH,
    NOT_SERIES,
    NOT_SERIES_ANY_TYPE,
    resolve_fields,
)
from perfwatch.metrics.tiers.flatten import numeric_leaves
from perfwatch.metrics.tiers.stats import BucketStats

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DEMO_TIMES = [epoch_seconds(T0) + offset for offset in (0, 3_600, 43_200, 86_399)]


def every_number(value: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
    """The paths of all numbers of ``value``, by the plainest walk (the reference)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from every_number(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from every_number(child, (*path, str(index)))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield ".".join(path)


def random_value(rng: random.Random) -> Any:
    """Mostly numbers (ints beyond 2**53 too), sometimes what the tiers must ignore."""
    draw = rng.random()
    if draw < 0.4:
        return round(rng.uniform(-1_000, 1_000), 3)
    if draw < 0.7:
        return rng.randint(-(10**17), 10**17)
    if draw < 0.8:
        return rng.random() < 0.5
    if draw < 0.9:
        return None
    return "7"


def random_document(rng: random.Random) -> dict[str, Any]:
    document: dict[str, Any] = {"schema_version": 1}
    for name in ("a", "b", "c"):
        if rng.random() < 0.8:  # a field missing from some documents
            document[name] = random_value(rng)
    document["nested"] = {
        "x": random_value(rng),
        "list": [random_value(rng) for _ in range(rng.randint(0, 3))],
    }
    return document


def assert_same_stats(actual: BucketStats, expected: BucketStats) -> None:
    """Equal, but for the sums of floats, which may round differently when added in another
    order."""
    assert actual.snapshots == expected.snapshots
    assert actual.fields.keys() == expected.fields.keys()
    for path, (count, total, low, high, last) in expected.fields.items():
        got = actual.fields[path]
        assert [got[0], got[2], got[3], got[4]] == [count, low, high, last], path
        assert math.isclose(got[1], total, rel_tol=1e-12, abs_tol=1e-9), path


# ----- flatten -----------------------------------------------------------------------------------
@pytest.mark.parametrize("metric_type", sorted(GENERATORS))
def test_every_path_of_a_demo_document_is_a_field_a_query_may_name(metric_type: str) -> None:
    rng = random.Random(metric_type)
    for t in DEMO_TIMES:
        document = GENERATORS[metric_type](t, rng)
        leaves = numeric_leaves(metric_type, document)
        assert leaves
        for path in leaves:
            assert resolve_fields(metric_type, [path]) == [path]
        skipped = NOT_SERIES.get(metric_type, NOT_SERIES_ANY_TYPE)
        assert set(leaves) == {
            path for path in every_number(document) if path.split(".")[0] not in skipped
        }
        assert all(leaves[path] == _at(document, path) for path in leaves)


def _at(document: Any, path: str) -> Any:
    for segment in path.split("."):
        document = document[int(segment)] if isinstance(document, list) else document[segment]
    return document


def test_paths_are_written_as_fields_names_them() -> None:
    cpu = numeric_leaves("cpu", GENERATORS["cpu"](DEMO_TIMES[0], random.Random(1)))
    assert {"percent", "per_core.0", "per_core.3", "load_average.1m"} <= cpu.keys()
    disk = numeric_leaves("disk", GENERATORS["disk"](DEMO_TIMES[0], random.Random(1)))
    assert {"io.vda.read_bytes_per_s", "usage.0.percent", "usage.0.total_bytes"} <= disk.keys()
    network = numeric_leaves("network", GENERATORS["network"](DEMO_TIMES[0], random.Random(1)))
    assert "interfaces.eth0.bytes_sent_per_s" in network
    assert "interfaces.eth0.is_up" not in network  # a boolean


def test_processes_keep_their_counts_and_leave_out_the_ranked_lists() -> None:
    document = GENERATORS["processes"](DEMO_TIMES[0], random.Random(1))
    assert document["top_cpu"] and document["top_memory"]
    leaves = numeric_leaves("processes", document)
    assert set(leaves) == {
        "total",
        "threads_total",
        "by_status.running",
        "by_status.sleeping",
        "by_status.idle",
        "by_status.stopped",
        "by_status.zombie",
    }
    # The lists are ranks of the processes type only; another type's member of that name stays.
    assert "top_cpu.0.pid" in numeric_leaves("custom", document)
    assert "schema_version" not in numeric_leaves("custom", document)


def test_only_finite_numbers_are_leaves() -> None:
    document = {
        "int": 3,
        "float": 2.5,
        "zero": 0.0,
        "negative": -7,
        "big": 2**70,
        "true": True,
        "false": False,
        "null": None,
        "text": "12",
        "nan": math.nan,
        "inf": math.inf,
        "empty": {},
        "list": [False, 1.5, None, "x", [4, True], {"v": 5}],
    }
    assert numeric_leaves("custom", document) == {
        "int": 3,
        "float": 2.5,
        "zero": 0.0,
        "negative": -7,
        "big": 2**70,
        "list.1": 1.5,
        "list.4.0": 4,
        "list.5.v": 5,
    }
    assert type(numeric_leaves("custom", {"n": 3})["n"]) is int  # ints stay exact


def test_keys_no_query_could_name_are_left_out() -> None:
    document = {
        "temperatures": {
            "acpitz 1": [{"current_c": 40.0}],  # a space
            "dm-0": [{"current_c": 41.0}],
            "nvme_0": [{"current_c": 42.0}],
        },
        "a.b": 1,  # would read as a path of two segments
        "": 2,
        "/": 3,
        "é": 4,
        "sda1": {"0": 5},  # digits as an object key: what PostgreSQL's #> reads too
    }
    assert numeric_leaves("custom", document) == {
        "temperatures.dm-0.0.current_c": 41.0,
        "temperatures.nvme_0.0.current_c": 42.0,
        "sda1.0": 5,
    }


def test_depth_and_length_limits_are_the_validators() -> None:
    deepest: Any = 1
    too_deep: Any = 2
    for _ in range(MAX_FIELD_PATH_DEPTH - 1):
        deepest = {"k": deepest}
    for _ in range(MAX_FIELD_PATH_DEPTH):
        too_deep = {"k": too_deep}
    leaves = numeric_leaves("custom", {"d": deepest, "x": too_deep})
    assert leaves == {".".join(["d"] + ["k"] * (MAX_FIELD_PATH_DEPTH - 1)): 1}
    assert resolve_fields("custom", list(leaves)) == list(leaves)

    longest = "a" * MAX_FIELD_PATH_LENGTH
    too_long = "b" * (MAX_FIELD_PATH_LENGTH + 1)
    assert numeric_leaves("custom", {longest: 1, too_long: 2, "c": [3]}) == {longest: 1, "c.0": 3}


# ----- bucket statistics -------------------------------------------------------------------------
def test_last_is_the_newest_number_and_snapshots_count_every_document() -> None:
    bucket = BucketStats()
    for document in ({"x": 1}, {"x": 3, "y": 7.5}, {"y": 1.5}, {"x": "n/a"}, {}, {"x": 2}):
        bucket.add("custom", document)
    assert bucket.snapshots == 6
    assert bucket.fields == {"x": [3, 6, 1, 3, 2], "y": [2, 9.0, 1.5, 7.5, 1.5]}


def test_merging_a_newer_bucket_takes_its_last_only_where_it_has_one() -> None:
    older, newer = BucketStats(), BucketStats()
    older.add("custom", {"x": 5, "y": 1})
    newer.add("custom", {"x": -2})
    newer.add("custom", {"z": 0.5})
    older.merge(newer)
    assert older.snapshots == 3
    assert older.fields == {"x": [2, 3, -2, 5, -2], "y": [1, 1, 1, 1, 1], "z": [1, 0.5] + [0.5] * 3}
    # The merged bucket owns its entries: merging more does not change the one merged from.
    older.merge(newer)
    assert newer.fields == {"x": [1, -2, -2, -2, -2], "z": [1, 0.5, 0.5, 0.5, 0.5]}


@pytest.mark.parametrize("seed", range(40))
def test_merged_minutes_equal_the_hour_added_at_once(seed: int) -> None:
    rng = random.Random(seed)
    documents = [random_document(rng) for _ in range(rng.randint(0, 120))]
    whole = BucketStats()
    for document in documents:
        whole.add("custom", document)

    # Cut into consecutive "minutes" (some empty), each stored and read back, then merged.
    cuts = sorted(rng.randint(0, len(documents)) for _ in range(rng.randint(0, 8)))
    hour = BucketStats()
    for low, high in zip([0, *cuts], [*cuts, len(documents)], strict=True):
        minute = BucketStats()
        for document in documents[low:high]:
            minute.add("custom", document)
        hour.merge(BucketStats.decode(minute.snapshots, minute.encode()))
    assert_same_stats(hour, whole)


def test_sums_of_ints_stay_exact_beyond_float_precision() -> None:
    bucket = BucketStats()
    for value in (2**53, 1, 1):
        bucket.add("custom", {"bytes": value})
    assert bucket.fields["bytes"][1] == 2**53 + 2
    assert BucketStats.decode(3, bucket.encode()).fields["bytes"][1] == 2**53 + 2


# ----- the stored form ---------------------------------------------------------------------------
def test_encoding_is_compact_json_with_whole_floats_as_ints() -> None:
    bucket = BucketStats(2, {"a": [2, 3.0, 0.0, 3.0, 3.0], "b": [1, 0.25, 0.25, 0.25, 0.25]})
    assert bucket.encode() == '{"a":[2,3,0,3,3],"b":[1,0.25,0.25,0.25,0.25]}'
    # Whole floats written with an exponent stay floats: as ints they would be longer.
    assert BucketStats(1, {"c": [1, 1e20, -1e16, 9e15, 2.0**60]}).encode() == (
        '{"c":[1,1e+20,-1e+16,9000000000000000,1.152921504606847e+18]}'
    )


@pytest.mark.parametrize("seed", range(10))
def test_decode_reads_what_encode_wrote_as_text_bytes_or_the_driver_s_dict(seed: int) -> None:
    rng = random.Random(seed)
    bucket = BucketStats()
    for _ in range(rng.randint(1, 30)):
        bucket.add("custom", random_document(rng))
    text = bucket.encode()
    for stored in (text, text.encode(), json.loads(text)):
        decoded = BucketStats.decode(bucket.snapshots, stored)
        assert decoded.snapshots == bucket.snapshots
        assert decoded.fields == bucket.fields  # 3 == 3.0: the numbers are the same
        assert decoded.encode() == text


def test_decoded_entries_are_copies_of_the_driver_s_dict() -> None:
    stored = {"x": [1, 2, 2, 2, 2]}
    decoded = BucketStats.decode(1, stored)
    decoded.merge(BucketStats(1, {"x": [1, 5, 5, 5, 5]}))
    assert stored == {"x": [1, 2, 2, 2, 2]}
    assert decoded.fields == {"x": [2, 7, 2, 5, 5]}
