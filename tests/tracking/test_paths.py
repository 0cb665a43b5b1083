"""Property tests: artifact path handling never lets a path escape its run."""

from __future__ import annotations

import posixpath

from hypothesis import given
from hypothesis import strategies as st

from edgeloop.errors import ValidationFailed
from edgeloop.tracking import check_artifact_path

segment = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=8)


@given(st.lists(st.one_of(segment, st.sampled_from(["..", ".", "", "/", "\\", "C:"])), max_size=6))
def test_accepted_paths_stay_inside_the_run(parts: list[str]) -> None:
    path = "/".join(parts)
    try:
        accepted = check_artifact_path(path)
    except ValidationFailed:
        return
    assert accepted == path
    normal = posixpath.normpath(posixpath.join("/run", accepted))
    assert normal.startswith("/run/")
    assert normal == posixpath.join("/run", accepted)  # already normal: no '.', '..' or '//'
    assert "\\" not in accepted
    assert "\x00" not in accepted


@given(
    st.lists(
        st.text(alphabet="abcdefgh-_.0123456789", min_size=1, max_size=10), min_size=1, max_size=5
    )
)
def test_ordinary_relative_paths_are_accepted(parts: list[str]) -> None:
    parts = [p if p not in (".", "..") else p + "x" for p in parts]
    path = "/".join(parts)
    assert check_artifact_path(path) == path
