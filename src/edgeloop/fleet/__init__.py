"""Fleet: signed model bundles, device enrollment and OTA rollouts.

:mod:`edgeloop.fleet.bundle` builds, signs, packs and verifies model bundles
(``edgeloop-bundle/1``); the device agent imports it, so it needs only numpy and
``cryptography``.
"""
