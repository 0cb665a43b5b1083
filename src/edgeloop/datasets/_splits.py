"""Deterministic train/validation/test splits and k-fold assignments of a dataset version.

A split is an array with one entry per row of the table, in row order: ``"train"``, ``"val"``
or ``"test"`` for :func:`assign_split`, a fold index ``0..k-1`` for :func:`assign_folds`.
:func:`split_digest` names that array with a SHA-256 so a run can record exactly which rows
it trained on.

Determinism: the only source of randomness is the PCG64 bit generator seeded through
``numpy.random.SeedSequence(seed)``; both algorithms are fixed by their definitions, so their
raw 64-bit output is the same in every process, on every machine and in every numpy version.
Rows (or groups) are shuffled by sorting those raw draws (a stable sort, so even a tie has a
fixed outcome); numpy's own ``shuffle``/``permutation`` algorithms are not used, nor Python's
``hash``, dict or set order. Label and group values are sorted (Arrow's order: code points for
strings, numeric order for numbers) before anything is drawn, so the result depends only on
the table's contents and row order and on the spec.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from edgeloop.errors import ValidationFailed

__all__ = [
    "SIDES",
    "FoldMethod",
    "FoldSpec",
    "SplitMethod",
    "SplitSpec",
    "assign_folds",
    "assign_split",
    "split_digest",
]

SplitMethod = Literal["random", "stratified", "group"]
FoldMethod = Literal["kfold", "stratified", "group"]

SIDES: tuple[str, str, str] = ("train", "val", "test")
"""The values of a split assignment; the array's dtype is ``<U5``."""

_TRAIN, _VAL, _TEST = 0, 1, 2
_EPS = 1e-9

IntArray = npt.NDArray[np.int64]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_seed(seed: object) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValidationFailed(f"seed must be a non-negative integer, got {seed!r}")


def _check_column_name(field: str, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValidationFailed(f"{field} must be a column name, got {value!r}")


@dataclass(frozen=True)
class SplitSpec:
    """How to split a table's rows into train, validation and test.

    - ``method="random"``: rows are shuffled and cut; each side's row count is the exact
      fraction of the rows rounded up or down (the three counts add up to the row count).
    - ``method="stratified"``: the same, per value of the ``label`` column, so every class
      keeps the fractions: each class's count on each side is its exact share rounded up or
      down, and the sides' totals are also the exact shares rounded up or down. A class with a
      single row goes to train.
    - ``method="group"``: whole groups (values of the ``group`` column, e.g. subject, device
      or session) go to one side, so no group is on two sides. Sizes follow the fractions **by
      rows**: groups are shuffled and laid end to end, and a group goes to the side in which the
      middle of its rows falls (test first, then validation, then train); each side that is
      asked for gets at least one group.

    ``test`` is the test fraction, in (0, 1); ``validation`` is 0 (no validation side) or a
    fraction in (0, 1); their sum must be below 1 (train gets the rest). ``seed`` is a
    non-negative integer. A split never leaves train, test, or (when ``validation > 0``)
    validation empty: it raises :class:`ValidationFailed` instead.
    """

    method: SplitMethod
    test: float = 0.2
    validation: float = 0.0
    seed: int = 0
    label: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        methods = get_args(SplitMethod)
        if self.method not in methods:
            raise ValidationFailed(
                f"split method must be one of {', '.join(methods)}; got {self.method!r}"
            )
        if not _is_number(self.test) or not 0 < self.test < 1:
            raise ValidationFailed(
                f"test must be a fraction strictly between 0 and 1 (e.g. 0.2), got {self.test!r}"
            )
        if not _is_number(self.validation) or not 0 <= self.validation < 1:
            raise ValidationFailed(
                "validation must be 0 (no validation side) or a fraction strictly between "
                f"0 and 1, got {self.validation!r}"
            )
        if self.test + self.validation >= 1:
            raise ValidationFailed(
                f"test + validation must be below 1 so train keeps some rows; got "
                f"{self.test} + {self.validation} = {self.test + self.validation}"
            )
        _check_seed(self.seed)
        _check_column_name("label", self.label)
        _check_column_name("group", self.group)
        if self.method == "stratified" and self.label is None:
            raise ValidationFailed("a stratified split needs label: the column to stratify by")
        if self.method == "group" and self.group is None:
            raise ValidationFailed(
                "a group split needs group: the column whose values must stay on one side "
                "(e.g. subject, device or session)"
            )


@dataclass(frozen=True)
class FoldSpec:
    """How to assign a table's rows to ``k`` cross-validation folds.

    - ``method="kfold"``: rows are shuffled and dealt out; fold sizes differ by at most one.
    - ``method="stratified"``: the same per value of ``label``: each class's count in each fold
      is its exact share (``n / k``) rounded up or down, and fold sizes differ by at most one.
      A class with fewer than ``k`` rows is absent from some folds.
    - ``method="group"``: whole groups (values of ``group``) go to one fold; groups are taken
      largest first (ties in a seeded random order) and each goes to the fold with the fewest
      rows so far, which balances folds by rows. Every fold gets at least one group.

    ``k`` is at least 2 and at most the number of rows (groups, for ``method="group"``).
    """

    method: FoldMethod
    k: int = 5
    seed: int = 0
    label: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        methods = get_args(FoldMethod)
        if self.method not in methods:
            raise ValidationFailed(
                f"fold method must be one of {', '.join(methods)}; got {self.method!r}"
            )
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 2:
            raise ValidationFailed(f"k must be an integer of at least 2, got {self.k!r}")
        _check_seed(self.seed)
        _check_column_name("label", self.label)
        _check_column_name("group", self.group)
        if self.method == "stratified" and self.label is None:
            raise ValidationFailed("stratified folds need label: the column to stratify by")
        if self.method == "group" and self.group is None:
            raise ValidationFailed(
                "group folds need group: the column whose values must stay in one fold "
                "(e.g. subject, device or session)"
            )


# -- shared helpers --------------------------------------------------------------------------


def _bit_generator(seed: int) -> np.random.PCG64:
    return np.random.PCG64(np.random.SeedSequence(seed))


def _keys(bits: np.random.PCG64, n: int) -> npt.NDArray[np.uint64]:
    """``n`` raw PCG64 draws: random sort keys that no numpy version can change."""
    return np.asarray(bits.random_raw(n), dtype=np.uint64).reshape(n)


def _shuffled(bits: np.random.PCG64, n: int) -> IntArray:
    """A random permutation of ``range(n)``, by sorting raw draws."""
    return np.argsort(_keys(bits, n), kind="stable").astype(np.int64)


def _codes(table: pa.Table, name: str, role: str, what: str) -> tuple[IntArray, int]:
    """Each row's rank among the sorted distinct values of column ``name``, and their count."""
    if name not in table.column_names:
        raise ValidationFailed(
            f"{role} column {name!r} is not in the table; columns: "
            f"{', '.join(table.column_names) or '(none)'}"
        )
    column = table.column(name)
    if column.null_count:
        raise ValidationFailed(
            f"{role} column {name!r} has {column.null_count} null value(s); fill or drop those "
            f"rows before making {what}"
        )
    values = column.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_nested(values.type):
        raise ValidationFailed(
            f"{role} column {name!r} must hold plain values (strings, integers, ...), "
            f"not {values.type}"
        )
    encoded = pc.dictionary_encode(values)
    order = np.asarray(pc.sort_indices(encoded.dictionary).to_numpy(), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return rank[indices], len(order)


def _check_rows(table: pa.Table) -> int:
    if not isinstance(table, pa.Table):
        raise ValidationFailed(f"expected a pyarrow.Table, got {type(table).__name__}")
    n = table.num_rows
    if n == 0:
        raise ValidationFailed("the table has no rows to split")
    return int(n)


# -- train / val / test ----------------------------------------------------------------------


def _round_cells(sizes: IntArray, fractions: npt.NDArray[np.float64]) -> IntArray:
    """Round ``sizes[c] * fractions[s]`` to integers with every row summing to ``sizes[c]``,
    every cell equal to its exact value rounded down or up, and every column summing to its
    exact total rounded down or up (controlled rounding: start from each row's largest
    remainders, then move units along alternating paths between columns until every column
    total is within its bounds)."""
    exact = sizes[:, None].astype(np.float64) * fractions[None, :]
    floors = np.floor(exact + _EPS)
    remainder = np.where(exact - floors > _EPS, exact - floors, 0.0)
    eligible = remainder > 0
    extra = np.rint(sizes - floors.sum(axis=1)).astype(np.int64)  # 0, 1 or 2 per class
    # Start from each class's largest remainders (ties: test, then val, then train).
    preference = np.argsort(-remainder[:, ::-1], axis=1, kind="stable")
    preference = remainder.shape[1] - 1 - preference
    rank = np.empty_like(preference)
    np.put_along_axis(rank, preference, np.arange(preference.shape[1])[None, :], axis=1)
    chosen = (rank < extra[:, None]) & eligible
    column_total = remainder.sum(axis=0)
    low = np.floor(column_total + _EPS).astype(np.int64)
    high = np.ceil(column_total - _EPS).astype(np.int64)
    sides = range(fractions.shape[0])
    while True:
        counts = chosen.sum(axis=0)
        over = [s for s in sides if counts[s] > high[s]]
        under = [s for s in sides if counts[s] < low[s]]
        if not over and not under:
            break
        # The classes that could move one unit from side a to side b.
        movable = {
            (a, b): chosen[:, a] & ~chosen[:, b] & eligible[:, b]
            for a in sides
            for b in sides
            if a != b
        }
        edges = {pair: int(mask.sum()) for pair, mask in movable.items() if mask.any()}
        if over:  # move units out of an over-full side into sides with room
            slack = {over[0]: int(counts[over[0]] - high[over[0]])}
            room = {s: int(high[s] - counts[s]) for s in sides if counts[s] < high[s]}
        else:  # move units into an under-full side from sides that can spare some
            slack = {s: int(counts[s] - low[s]) for s in sides if counts[s] > low[s]}
            room = {under[0]: int(low[under[0]] - counts[under[0]])}
        path = _find_path(list(slack), set(room), set(edges), len(sides))
        if path is None:  # pragma: no cover - impossible: a feasible rounding always exists
            raise AssertionError("controlled rounding found no path")
        steps = list(itertools.pairwise(path))
        amount = min(slack[path[0]], room[path[-1]], *(edges[step] for step in steps))
        # The classes on different steps are different (a step's classes hold a unit on its
        # start side, the previous step's lack one there), so all of them can move at once;
        # on each step, those that lose the least remainder move first.
        for a, b in steps:
            gain = np.where(movable[(a, b)], remainder[:, b] - remainder[:, a], -np.inf)
            picked = np.argsort(-gain, kind="stable")[:amount]
            chosen[picked, a], chosen[picked, b] = False, True
    cells: IntArray = floors.astype(np.int64) + chosen.astype(np.int64)
    return cells


def _find_path(
    starts: list[int], targets: set[int], edges: set[tuple[int, int]], n: int
) -> list[int] | None:
    """Shortest side-to-side path (breadth first) from one of ``starts`` to one of ``targets``."""
    frontier = [[s] for s in starts]
    seen = set(starts)
    while frontier:
        following: list[list[int]] = []
        for path in frontier:
            for b in range(n):
                if b in seen or (path[-1], b) not in edges:
                    continue
                if b in targets:
                    return [*path, b]
                seen.add(b)
                following.append([*path, b])
        frontier = following
    return None


def _by_class(codes: IntArray, n_classes: int, spec: SplitSpec, bits: np.random.PCG64) -> IntArray:
    """Side per row (0 train, 1 val, 2 test) when rows are split within each class."""
    n = len(codes)
    sizes = np.bincount(codes, minlength=n_classes).astype(np.int64)
    fractions = np.array([1.0 - spec.test - spec.validation, spec.validation, spec.test])
    cells = np.zeros((n_classes, 3), dtype=np.int64)
    single = sizes == 1
    cells[single, _TRAIN] = 1
    if (~single).any():
        cells[~single] = _round_cells(sizes[~single], fractions)
    order = np.lexsort((_keys(bits, n), codes))  # by class, shuffled within each class
    ordered_codes = codes[order]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    position = np.arange(n, dtype=np.int64) - starts[ordered_codes]
    n_test = cells[ordered_codes, _TEST]
    n_val = cells[ordered_codes, _VAL]
    ordered_side = np.where(
        position < n_test, _TEST, np.where(position < n_test + n_val, _VAL, _TRAIN)
    )
    side = np.empty(n, dtype=np.int64)
    side[order] = ordered_side
    return side


def _by_group(
    codes: IntArray, n_groups: int, spec: SplitSpec, bits: np.random.PCG64, column: str
) -> IntArray:
    """Side per row when whole groups are placed by the middle of their rows."""
    n = len(codes)
    wanted = [_TRAIN, _TEST] + ([_VAL] if spec.validation > 0 else [])
    if n_groups < len(wanted):
        raise ValidationFailed(
            f"a group split into {len(wanted)} sides needs at least {len(wanted)} groups; "
            f"column {column!r} has {n_groups}"
        )
    sizes = np.bincount(codes, minlength=n_groups).astype(np.int64)
    order = _shuffled(bits, n_groups)
    ordered_sizes = sizes[order]
    middle = np.cumsum(ordered_sizes) - ordered_sizes / 2.0
    test_end = n * spec.test
    val_end = n * (spec.test + spec.validation)
    group_side = np.empty(n_groups, dtype=np.int64)
    group_side[order] = np.where(middle < test_end, _TEST, np.where(middle < val_end, _VAL, _TRAIN))
    targets = {_TRAIN: n - val_end, _VAL: val_end - test_end, _TEST: test_end}
    position = np.empty(n_groups, dtype=np.int64)
    position[order] = np.arange(n_groups)
    for side in wanted:
        if (group_side == side).any():
            continue
        # Give the empty side the group closest to its target size, from a side that keeps
        # at least one group (ties: earliest in the shuffled order).
        counts = np.bincount(group_side, minlength=3)
        donors = np.flatnonzero(counts[group_side] >= 2)
        distance = np.abs(sizes[donors] - targets[side])
        pick = donors[np.lexsort((position[donors], distance))[0]]
        group_side[pick] = side
    return group_side[codes]


def assign_split(table: pa.Table, spec: SplitSpec) -> npt.NDArray[np.str_]:
    """Assign every row of ``table`` to ``"train"``, ``"val"`` or ``"test"``.

    Returns a ``<U5`` array with one entry per row, in row order. The result depends only on
    the table's contents and row order and on ``spec`` (see :class:`SplitSpec` for how each
    method places rows); it is identical across processes, machines and numpy versions.

    Raises :class:`ValidationFailed` for an empty table, a missing or null-holding
    label/group column, and a split that would leave a side empty.
    """
    if not isinstance(spec, SplitSpec):
        raise ValidationFailed(f"spec must be a SplitSpec, got {type(spec).__name__}")
    n = _check_rows(table)
    bits = _bit_generator(spec.seed)
    what = f"a {spec.method} split"
    if spec.method == "group":
        assert spec.group is not None
        codes, n_groups = _codes(table, spec.group, "group", what)
        side = _by_group(codes, n_groups, spec, bits, spec.group)
    else:
        if spec.method == "stratified":
            assert spec.label is not None
            codes, n_classes = _codes(table, spec.label, "label", what)
        else:
            codes, n_classes = np.zeros(n, dtype=np.int64), 1
        side = _by_class(codes, n_classes, spec, bits)
    counts = np.bincount(side, minlength=3)
    wanted = [_TRAIN, _TEST] + ([_VAL] if spec.validation > 0 else [])
    for s in wanted:
        if counts[s] == 0:
            raise ValidationFailed(
                f"{what} of {n} rows with test={spec.test}, validation={spec.validation} "
                f"leaves {SIDES[s]} empty; use more rows or a larger {SIDES[s]} share"
                + (" (classes with one row all go to train)" if spec.method == "stratified" else "")
            )
    return np.array(SIDES, dtype="<U5")[side]


# -- folds -----------------------------------------------------------------------------------


def assign_folds(table: pa.Table, spec: FoldSpec) -> npt.NDArray[np.int64]:
    """Assign every row of ``table`` to a fold ``0..k-1``.

    Returns an ``int64`` array with one entry per row, in row order; deterministic like
    :func:`assign_split` (see :class:`FoldSpec` for how each method places rows). Raises
    :class:`ValidationFailed` when ``k`` exceeds the rows (or groups), and for a missing or
    null-holding label/group column.
    """
    if not isinstance(spec, FoldSpec):
        raise ValidationFailed(f"spec must be a FoldSpec, got {type(spec).__name__}")
    n = _check_rows(table)
    k = spec.k
    bits = _bit_generator(spec.seed)
    what = f"{spec.method} folds"
    if spec.method == "group":
        assert spec.group is not None
        codes, n_groups = _codes(table, spec.group, "group", what)
        if k > n_groups:
            raise ValidationFailed(
                f"k={k} group folds need at least {k} groups; column {spec.group!r} has {n_groups}"
            )
        sizes = np.bincount(codes, minlength=n_groups).astype(np.int64)
        order = np.lexsort((_keys(bits, n_groups), -sizes))  # largest first, seeded ties
        group_fold = np.empty(n_groups, dtype=np.int64)
        heap = [(0, f) for f in range(k)]
        for g in order.tolist():
            rows, fold = heapq.heappop(heap)
            group_fold[g] = fold
            heapq.heappush(heap, (rows + int(sizes[g]), fold))
        fold_of_row = group_fold[codes]
    else:
        if k > n:
            raise ValidationFailed(f"k={k} folds need at least {k} rows; the table has {n}")
        if spec.method == "stratified":
            assert spec.label is not None
            codes, _ = _codes(table, spec.label, "label", what)
            order = np.lexsort((_keys(bits, n), codes))  # by class, shuffled within
        else:
            order = _shuffled(bits, n)
        fold_of_row = np.empty(n, dtype=np.int64)
        fold_of_row[order] = np.arange(n, dtype=np.int64) % k
    relabel = _shuffled(bits, k)  # which fold number gets the larger folds is random too
    return relabel[fold_of_row]


# -- digest ----------------------------------------------------------------------------------


def split_digest(assignment: npt.NDArray[np.generic]) -> str:
    """SHA-256 (hex) of a canonical encoding of an assignment from :func:`assign_split` or
    :func:`assign_folds`.

    The encoding does not depend on the array's dtype width or byte order: string entries
    (``<U5``, bytes or ``object`` holding ``str``) are UTF-8 text, one per line after the
    header ``edgeloop.split/v1 str <n>``; integer entries are little-endian int64 after the
    header ``edgeloop.split/v1 int <n>``.
    """
    array = np.asarray(assignment)
    if array.ndim != 1:
        raise ValidationFailed(
            f"an assignment is one entry per row (1-D), got an array of shape {array.shape}"
        )
    n = array.shape[0]
    if array.dtype.kind in "iu":
        header, body = "int", array.astype("<i8").tobytes()
    elif array.dtype.kind in "USO":
        values = [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]
        if not all(isinstance(v, str) and "\n" not in v for v in values):
            raise ValidationFailed(
                "a split assignment must hold strings without line breaks (train/val/test)"
            )
        header, body = "str", "".join(f"{v}\n" for v in values).encode()
    else:
        raise ValidationFailed(f"an assignment holds side names or fold numbers, not {array.dtype}")
    digest = hashlib.sha256(f"edgeloop.split/v1 {header} {n}\n".encode())
    digest.update(body)
    return digest.hexdigest()
