"""The journal: torn records, replay, compaction."""

from __future__ import annotations

from pathlib import Path

from edgeloop.agent import Journal


def _clock() -> float:
    return 1764000000.0


def test_a_torn_last_record_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, _clock)
    journal.append("assigned", rollout="ro_1", release="rel_1", slot="a", previous=None)
    with path.open("ab") as f:
        f.write(b'{"seq":2,"step":"downl')  # the crash came mid-write
    reopened = Journal(path, _clock)
    assert [r["step"] for r in reopened.records()] == ["assigned"]
    reopened.append("downloading", bytes_total=1, bytes_saved=0)
    assert [r["seq"] for r in reopened.records()] == [1, 2]
    assert path.read_bytes().endswith(b"\n")


def test_replay_follows_an_update(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", _clock)
    journal.append("assigned", rollout="ro_1", release="rel_1", slot="b", previous="a")
    journal.append("downloaded", bytes_downloaded=10, bytes_saved=90)
    journal.append("installing", slot="b")
    journal.append("verifying", slot="b")
    journal.append("switched", slot="b", previous="a")
    update = journal.state().update
    assert update is not None and update.last == "switched" and update.switched
    assert update.state() == "verifying" and not update.finished
    journal.append("failed", reason="self-test", message="", switched=True)
    journal.append("rolled-back", slot="a", reason="self-test")
    journal.append("reported", state="failed")
    state = journal.state()
    assert state.update is not None and state.update.finished
    assert state.update.unreported() == [("rolled-back", "self-test")]
    assert (state.update.bytes_downloaded, state.update.bytes_saved) == (10, 90)


def test_compaction_keeps_the_committed_slot_and_the_last_update(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl", _clock)
    for i in range(30):
        slot = "ab"[i % 2]
        journal.append("assigned", rollout=f"ro_{i}", release=f"rel_{i}", slot=slot)
        journal.append("committed", slot=slot, release=f"rel_{i}")
        journal.append("reported", state="healthy")
    journal.append("assigned", rollout="ro_x", release="rel_x", slot="a", previous="b")
    journal.append("downloading", bytes_total=5, bytes_saved=0)
    before = journal.state()
    assert journal.compact(threshold=10)
    after = Journal(tmp_path / "j.jsonl", _clock)
    assert len(after.records()) == 3
    state = after.state()
    assert (state.committed_slot, state.committed_release) == ("b", "rel_29")
    assert state.update is not None and before.update is not None
    assert (state.update.release, state.update.last) == ("rel_x", "downloading")
    after.append("downloaded", bytes_downloaded=5, bytes_saved=0)
    assert [r["seq"] for r in after.records()] == [1, 2, 3, 4]
