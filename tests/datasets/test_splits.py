"""Splits and folds: no group leaks, stratification within one row, determinism, validation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeloop.datasets._splits import (
    SIDES,
    FoldMethod,
    FoldSpec,
    SplitMethod,
    SplitSpec,
    assign_folds,
    assign_split,
    split_digest,
)
from edgeloop.errors import ValidationFailed

PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# -- strategies ------------------------------------------------------------------------------

fractions = st.tuples(
    st.floats(0.05, 0.6), st.sampled_from([0.0, 0.0, 0.1, 0.15, 0.25, 0.3])
).filter(lambda tv: tv[0] + tv[1] < 0.95)


@st.composite
def tables(draw: st.DrawFn, max_rows: int = 80) -> pa.Table:
    """Rows with a skewed label (some classes with a single row) and uneven groups."""
    n = draw(st.integers(1, max_rows))
    labels = draw(st.lists(st.sampled_from("aaaabbbcde"), min_size=n, max_size=n))
    n_groups = draw(st.integers(1, max(1, n)))
    groups = draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n))
    return pa.table(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "label": labels,
            "subject": [f"subject-{g}" for g in groups],
        }
    )


def _column(table: pa.Table, name: str) -> np.ndarray[Any, np.dtype[Any]]:
    return np.asarray(table.column(name).to_pylist(), dtype=object)


def _sides_wanted(spec: SplitSpec) -> list[str]:
    return ["train", "test"] + (["val"] if spec.validation > 0 else [])


def _shares(spec: SplitSpec) -> dict[str, float]:
    return {"train": 1 - spec.test - spec.validation, "val": spec.validation, "test": spec.test}


def _check_assignment(table: pa.Table, assignment: np.ndarray[Any, np.dtype[Any]]) -> None:
    assert assignment.shape == (table.num_rows,)
    assert assignment.dtype == np.dtype("<U5")
    assert set(assignment.tolist()) <= set(SIDES)


def _attempt(table: pa.Table, spec: SplitSpec) -> tuple[str | None, np.ndarray[Any, np.dtype[Any]]]:
    """The split, or the message of the ValidationFailed it raised."""
    try:
        return None, assign_split(table, spec)
    except ValidationFailed as exc:
        return str(exc), np.array([], dtype="<U5")


# -- properties: split -----------------------------------------------------------------------


@PROPERTY
@given(table=tables(), tv=fractions, seed=st.integers(0, 2**32))
def test_random_split_sizes_are_the_exact_shares_rounded(
    table: pa.Table, tv: tuple[float, float], seed: int
) -> None:
    spec = SplitSpec("random", test=tv[0], validation=tv[1], seed=seed)
    n = table.num_rows
    error, assignment = _attempt(table, spec)
    if error is not None:
        # Only when a side that was asked for gets under one row's worth.
        assert "empty" in error
        assert min(n * _shares(spec)[s] for s in _sides_wanted(spec)) < 1
        return
    _check_assignment(table, assignment)
    for side, share in _shares(spec).items():
        count = int((assignment == side).sum())
        assert math.floor(n * share - 1e-9) <= count <= math.ceil(n * share + 1e-9)
    for side in _sides_wanted(spec):
        assert (assignment == side).any()
    if spec.validation == 0:
        assert not (assignment == "val").any()


@PROPERTY
@given(table=tables(), tv=fractions, seed=st.integers(0, 2**32))
def test_stratified_split_keeps_every_class_within_one_row(
    table: pa.Table, tv: tuple[float, float], seed: int
) -> None:
    spec = SplitSpec("stratified", test=tv[0], validation=tv[1], seed=seed, label="label")
    labels = _column(table, "label")
    values, sizes = np.unique(labels.astype(str), return_counts=True)
    big = {str(v) for v, c in zip(values, sizes, strict=True) if c > 1}
    n_big = sum(int(c) for c in sizes if c > 1)
    error, assignment = _attempt(table, spec)
    if error is not None:
        assert "empty" in error
        # Totals are the exact shares (over classes with more than one row) rounded, and
        # single-row classes go to train: a side is empty only below one row's worth.
        shares = _shares(spec)
        assert any(
            n_big * shares[s] + (table.num_rows - n_big if s == "train" else 0) < 1
            for s in _sides_wanted(spec)
        )
        return
    _check_assignment(table, assignment)
    for value, size in zip(values, sizes, strict=True):
        mine = assignment[labels == value]
        if size == 1:
            assert mine.tolist() == ["train"]
            continue
        for side, share in _shares(spec).items():
            count = int((mine == side).sum())
            assert abs(count - size * share) < 1 + 1e-9, (value, side, count, size * share)
    in_big = np.isin(labels.astype(str), list(big))
    for side, share in _shares(spec).items():
        count = int((assignment[in_big] == side).sum())
        assert abs(count - n_big * share) < 1 + 1e-9


@PROPERTY
@given(table=tables(), tv=fractions, seed=st.integers(0, 2**32))
def test_group_split_never_puts_a_group_on_two_sides(
    table: pa.Table, tv: tuple[float, float], seed: int
) -> None:
    spec = SplitSpec("group", test=tv[0], validation=tv[1], seed=seed, group="subject")
    groups = _column(table, "subject")
    n_groups = len(set(groups.tolist()))
    error, assignment = _attempt(table, spec)
    if error is not None:
        assert "needs at least" in error
        assert n_groups < len(_sides_wanted(spec))
        return
    _check_assignment(table, assignment)
    for group in set(groups.tolist()):
        assert len(set(assignment[groups == group].tolist())) == 1, group
    for side in _sides_wanted(spec):
        assert (assignment == side).any()
    # By rows, each side is within two of the largest group of its share.
    largest = max(int((groups == g).sum()) for g in set(groups.tolist()))
    for side, share in _shares(spec).items():
        count = int((assignment == side).sum())
        assert abs(count - table.num_rows * share) <= 2 * largest


@PROPERTY
@given(
    table=tables(),
    method=st.sampled_from(["random", "stratified", "group"]),
    tv=fractions,
    seed=st.integers(0, 2**32),
)
def test_split_is_deterministic_and_ignores_chunking_and_encoding(
    table: pa.Table, method: Any, tv: tuple[float, float], seed: int
) -> None:
    spec = SplitSpec(
        method, test=tv[0], validation=tv[1], seed=seed, label="label", group="subject"
    )
    try:
        first = assign_split(table, spec)
    except ValidationFailed:
        return
    assert np.array_equal(first, assign_split(table, spec))
    # The same contents in several chunks, with dictionary-encoded columns: same split.
    cut = table.num_rows // 2
    rechunked = pa.Table.from_batches(
        [*table.slice(0, cut).to_batches(), *table.slice(cut).to_batches()]
    )
    encoded = rechunked.set_column(1, "label", rechunked.column("label").dictionary_encode())
    encoded = encoded.set_column(2, "subject", encoded.column("subject").dictionary_encode())
    assert np.array_equal(first, assign_split(encoded, spec))
    assert split_digest(first) == split_digest(assign_split(encoded, spec))


# -- properties: folds -----------------------------------------------------------------------


@PROPERTY
@given(table=tables(), k=st.integers(2, 8), seed=st.integers(0, 2**32))
def test_kfold_sizes_differ_by_at_most_one(table: pa.Table, k: int, seed: int) -> None:
    spec = FoldSpec("kfold", k=k, seed=seed)
    if k > table.num_rows:
        with pytest.raises(ValidationFailed, match="need at least"):
            assign_folds(table, spec)
        return
    folds = assign_folds(table, spec)
    assert folds.shape == (table.num_rows,)
    sizes = np.bincount(folds, minlength=k)
    assert len(sizes) == k
    assert sizes.max() - sizes.min() <= 1
    assert np.array_equal(folds, assign_folds(table, spec))


@PROPERTY
@given(table=tables(), k=st.integers(2, 8), seed=st.integers(0, 2**32))
def test_stratified_folds_keep_every_class_within_one_row(
    table: pa.Table, k: int, seed: int
) -> None:
    spec = FoldSpec("stratified", k=k, seed=seed, label="label")
    if k > table.num_rows:
        with pytest.raises(ValidationFailed, match="need at least"):
            assign_folds(table, spec)
        return
    folds = assign_folds(table, spec)
    labels = _column(table, "label")
    sizes = np.bincount(folds, minlength=k)
    assert len(sizes) == k
    assert sizes.max() - sizes.min() <= 1
    for value in set(labels.tolist()):
        mine = folds[labels == value]
        per_fold = np.bincount(mine, minlength=k)
        assert np.all(np.abs(per_fold - len(mine) / k) < 1), (value, per_fold)


@PROPERTY
@given(table=tables(), k=st.integers(2, 8), seed=st.integers(0, 2**32))
def test_group_folds_never_put_a_group_in_two_folds(table: pa.Table, k: int, seed: int) -> None:
    spec = FoldSpec("group", k=k, seed=seed, group="subject")
    groups = _column(table, "subject")
    distinct = sorted(set(groups.tolist()))
    if k > len(distinct):
        with pytest.raises(ValidationFailed, match=f"has {len(distinct)}"):
            assign_folds(table, spec)
        return
    folds = assign_folds(table, spec)
    assert folds.shape == (table.num_rows,)
    for group in distinct:
        assert len(set(folds[groups == group].tolist())) == 1, group
    rows = np.bincount(folds, minlength=k)
    assert len(rows) == k
    assert rows.min() > 0
    # Greedy largest-first: the fullest fold exceeds the emptiest by at most one group.
    largest = max(int((groups == g).sum()) for g in distinct)
    assert rows.max() - rows.min() <= largest
    assert np.array_equal(folds, assign_folds(table, spec))


# -- examples --------------------------------------------------------------------------------


SPLIT_METHODS: tuple[SplitMethod, ...] = ("random", "stratified", "group")
FOLD_METHODS: tuple[FoldMethod, ...] = ("kfold", "stratified", "group")


def _recordings(n: int = 200) -> pa.Table:
    return pa.table(
        {
            "sample_id": [f"r{i:03d}" for i in range(n)],
            "label": [["idle", "walk", "run", "fall"][i % 7 % 4] for i in range(n)],
            "subject": [f"p{(i * 7) % 23}" for i in range(n)],
        }
    )


def test_different_seeds_give_different_splits() -> None:
    table = _recordings()
    for method in ("random", "stratified", "group"):
        spec: dict[str, Any] = {"method": method, "label": "label", "group": "subject"}
        splits = {split_digest(assign_split(table, SplitSpec(**spec, seed=s))) for s in range(10)}
        assert len(splits) == 10, method
    for fold_method in ("kfold", "stratified", "group"):
        spec = {"method": fold_method, "label": "label", "group": "subject"}
        folds = {split_digest(assign_folds(table, FoldSpec(**spec, seed=s))) for s in range(10)}
        assert len(folds) == 10, fold_method


def test_assignments_match_recorded_digests() -> None:
    """Pinned digests: a change here means old recorded splits no longer reproduce (a new
    numpy, a new algorithm, hash randomisation leaking in) and must be a deliberate one."""
    table = _recordings()
    columns: dict[str, Any] = {"label": "label", "group": "subject"}
    got = {
        f"split/{m}": split_digest(
            assign_split(table, SplitSpec(m, test=0.2, validation=0.1, seed=7, **columns))
        )
        for m in SPLIT_METHODS
    }
    got |= {
        f"folds/{m}": split_digest(assign_folds(table, FoldSpec(m, k=4, seed=7, **columns)))
        for m in FOLD_METHODS
    }
    assert got == GOLDEN


GOLDEN = {
    "split/random": "0961391b01c4c04b733b8a92d178c923680ca598fa825494f8866484c3d65802",
    "split/stratified": "4635b96f74cb945e9d6dd74b19170aa0f57d670cf81f75a62bd6d11b014e34bf",
    "split/group": "fe439478f928f8fee39cf2d8b70ec03b77f5f81062fc3bfa75e0a154f578a653",
    "folds/kfold": "7fa636b6421c7fdbc734168c4837c74175a0426e3944cda89c2f95a9ba05e3f0",
    "folds/stratified": "b98b06ef1fe9491ebe40d7ea744f0211eabc9b48d699378dc6c8b7294728f32e",
    "folds/group": "c87b4a4c6eb8fcc64ac4a7de2eaceaf0ac2759257c7ddf45fe912b2e13e1f368",
}


def test_split_values_and_dtypes() -> None:
    table = _recordings(20)
    split = assign_split(table, SplitSpec("random", test=0.25, validation=0.25, seed=3))
    assert split.dtype == np.dtype("<U5")
    assert sorted(np.unique(split).tolist()) == ["test", "train", "val"]
    assert [int((split == s).sum()) for s in ("train", "val", "test")] == [10, 5, 5]
    folds = assign_folds(table, FoldSpec("kfold", k=3, seed=3))
    assert folds.dtype == np.int64
    assert sorted(set(folds.tolist())) == [0, 1, 2]


def test_single_row_class_goes_to_train() -> None:
    table = pa.table({"label": ["a"] * 10 + ["b"] * 10 + ["lonely"]})
    split = assign_split(table, SplitSpec("stratified", test=0.5, label="label", seed=1))
    assert split[-1] == "train"
    assert int((split[:10] == "test").sum()) == 5
    assert int((split[10:20] == "test").sum()) == 5


def test_stratified_totals_are_right_when_every_class_rounds_up() -> None:
    # 10 classes of 3 rows with test=0.5: each class's exact share is 1.5; rounding each class
    # on its own would give 10 x 2 = 20 test rows, but the total must be 15.
    table = pa.table({"label": [f"c{i}" for i in range(10) for _ in range(3)]})
    split = assign_split(table, SplitSpec("stratified", test=0.5, label="label", seed=0))
    assert int((split == "test").sum()) == 15
    labels = np.asarray(table.column("label").to_pylist())
    for value in set(labels.tolist()):
        assert int((split[labels == value] == "test").sum()) in (1, 2)


def test_group_split_gives_a_small_test_share_at_least_one_group() -> None:
    table = pa.table({"subject": ["a"] * 50 + ["b"] * 50})
    split = assign_split(table, SplitSpec("group", test=0.2, group="subject", seed=0))
    assert sorted(np.unique(split).tolist()) == ["test", "train"]


def test_split_digest_is_canonical() -> None:
    sides = np.array(["train", "test", "val"], dtype="<U5")
    assert split_digest(sides) == split_digest(sides.astype(object))
    assert split_digest(sides) == split_digest(sides.astype("<U8"))
    assert split_digest(sides) == split_digest(np.array([b"train", b"test", b"val"]))
    assert split_digest(sides) != split_digest(sides[::-1])
    folds = np.array([0, 1, 2, 1])
    assert split_digest(folds) == split_digest(folds.astype(np.int8))
    assert split_digest(folds) == split_digest(folds.astype(">i4"))
    assert split_digest(folds) != split_digest(np.array([0, 1, 2]))
    assert split_digest(np.array([0, 1, 2])) != split_digest(np.array(["0", "1", "2"]))
    assert len(split_digest(folds)) == 64
    with pytest.raises(ValidationFailed, match="1-D"):
        split_digest(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValidationFailed, match="not float64"):
        split_digest(np.array([0.5]))


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "random", "test": 0.0}, "test must be a fraction strictly between 0 and 1"),
        ({"method": "random", "test": 1.0}, "test must be a fraction"),
        ({"method": "random", "test": float("nan")}, "test must be a fraction"),
        ({"method": "random", "validation": -0.1}, "validation must be 0"),
        ({"method": "random", "validation": 1.0}, "validation must be 0"),
        ({"method": "random", "test": 0.5, "validation": 0.5}, r"0.5 \+ 0.5 = 1.0"),
        ({"method": "random", "seed": -1}, "seed must be a non-negative integer"),
        ({"method": "random", "seed": 1.5}, "seed must be a non-negative integer"),
        ({"method": "shuffle"}, "one of random, stratified, group; got 'shuffle'"),
        ({"method": "stratified"}, "needs label"),
        ({"method": "group"}, "needs group"),
        ({"method": "group", "group": ""}, "group must be a column name"),
    ],
)
def test_split_spec_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        SplitSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "kfold", "k": 1}, "k must be an integer of at least 2, got 1"),
        ({"method": "kfold", "k": 2.0}, "k must be an integer"),
        ({"method": "kfold", "seed": -3}, "seed must be"),
        ({"method": "leave-one-out"}, "one of kfold, stratified, group"),
        ({"method": "stratified"}, "need label"),
        ({"method": "group"}, "need group"),
    ],
)
def test_fold_spec_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        FoldSpec(**kwargs)


def test_table_errors_name_the_problem() -> None:
    table = _recordings(10)
    with pytest.raises(ValidationFailed, match="'species' is not in the table; columns: sample_id"):
        assign_split(table, SplitSpec("stratified", label="species"))
    with pytest.raises(ValidationFailed, match="group column 'device' is not in the table"):
        assign_folds(table, FoldSpec("group", group="device"))
    with pytest.raises(
        ValidationFailed, match="k=11 folds need at least 11 rows; the table has 10"
    ):
        assign_folds(table, FoldSpec("kfold", k=11))
    with pytest.raises(ValidationFailed, match="need at least 9 groups; column 'subject' has 8"):
        assign_folds(_recordings(8), FoldSpec("group", k=9, group="subject"))
    with pytest.raises(ValidationFailed, match="no rows"):
        assign_split(table.slice(0, 0), SplitSpec("random"))
    with pytest.raises(ValidationFailed, match="leaves test empty"):
        assign_split(table.slice(0, 2), SplitSpec("random", test=0.2))
    with pytest.raises(ValidationFailed, match="needs at least 3 groups; column 'subject' has 2"):
        assign_split(
            pa.table({"subject": ["a", "b", "b"]}),
            SplitSpec("group", validation=0.2, group="subject"),
        )
    nulls = pa.table({"label": ["a", None, "b"], "subject": ["x", "y", None]})
    with pytest.raises(ValidationFailed, match="label column 'label' has 1 null value"):
        assign_split(nulls, SplitSpec("stratified", label="label"))
    with pytest.raises(ValidationFailed, match="group column 'subject' has 1 null value"):
        assign_folds(nulls, FoldSpec("group", k=2, group="subject"))
    nested = pa.table({"subject": [[1], [2], [3]]})
    with pytest.raises(ValidationFailed, match="plain values"):
        assign_folds(nested, FoldSpec("group", k=2, group="subject"))
