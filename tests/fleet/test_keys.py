"""The fleet signing key: created private (0600) on first use, reused, overridden by the
environment, and refused when readable by others or corrupt."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeloop.errors import ValidationFailed
from edgeloop.fleet._keys import KEY_ENV, KEY_FILE, load_or_create_signing_key
from edgeloop.fleet.bundle import private_key_b64, public_key_b64


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_private_on_first_use_then_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"  # does not exist yet
    key = load_or_create_signing_key(home, environ={})
    path = home / KEY_FILE
    assert mode(path) == 0o600
    assert sorted(os.listdir(home)) == [KEY_FILE]  # no temp file left behind
    assert path.read_text().strip() == private_key_b64(key)
    again = load_or_create_signing_key(home, environ={})
    assert public_key_b64(again) == public_key_b64(key)


def test_created_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        load_or_create_signing_key(tmp_path, environ={})
    finally:
        os.umask(previous)
    assert mode(tmp_path / KEY_FILE) == 0o600


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    on_disk = load_or_create_signing_key(tmp_path, environ={})
    given = Ed25519PrivateKey.generate()
    key = load_or_create_signing_key(tmp_path, environ={KEY_ENV: private_key_b64(given)})
    assert public_key_b64(key) == public_key_b64(given) != public_key_b64(on_disk)


def test_environment_alone_creates_no_file(tmp_path: Path) -> None:
    given = Ed25519PrivateKey.generate()
    load_or_create_signing_key(tmp_path, environ={KEY_ENV: private_key_b64(given)})
    assert not (tmp_path / KEY_FILE).exists()


def test_garbage_in_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match=KEY_ENV) as info:
        load_or_create_signing_key(tmp_path, environ={KEY_ENV: "not-a-key"})
    assert info.value.details["field"] == KEY_ENV
    assert not (tmp_path / KEY_FILE).exists()


def test_default_environment_is_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given = Ed25519PrivateKey.generate()
    monkeypatch.setenv(KEY_ENV, private_key_b64(given))
    assert public_key_b64(load_or_create_signing_key(tmp_path)) == public_key_b64(given)


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660])
def test_refuses_a_key_file_others_can_read(tmp_path: Path, file_mode: int) -> None:
    load_or_create_signing_key(tmp_path, environ={})
    path = tmp_path / KEY_FILE
    path.chmod(file_mode)
    with pytest.raises(ValidationFailed, match="chmod 600") as info:
        load_or_create_signing_key(tmp_path, environ={})
    assert str(path) in info.value.message
    path.chmod(0o600)
    load_or_create_signing_key(tmp_path, environ={})


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"QUJD\n", b"\xff\xfe\x00", b"A" * 10_000])
def test_refuses_a_corrupt_key_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / KEY_FILE
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ValidationFailed) as info:
        load_or_create_signing_key(tmp_path, environ={})
    assert str(path) in info.value.message
    assert path.read_bytes() == content  # never replaced: devices trust the old public key


def test_a_key_created_meanwhile_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two server processes starting on a fresh home end up with one key."""
    first = Ed25519PrivateKey.generate()
    real_link = os.link

    def link_after_another_process(src: str, dst: str) -> None:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, private_key_b64(first).encode())
        os.close(fd)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_another_process)
    key = load_or_create_signing_key(tmp_path, environ={})
    assert public_key_b64(key) == public_key_b64(first)
    assert os.listdir(tmp_path) == [KEY_FILE]


def test_the_key_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp file is already 0600 with the key in it when it is published."""
    seen: list[tuple[int, int]] = []
    real_link = os.link

    def link(src: str, dst: str) -> None:
        seen.append((stat.S_IMODE(os.stat(src).st_mode), os.stat(src).st_size))
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    previous = os.umask(0)
    try:
        load_or_create_signing_key(tmp_path, environ={})
    finally:
        os.umask(previous)
    assert seen == [(0o600, 45)]  # 44 base64 characters and a newline
