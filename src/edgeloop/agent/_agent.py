"""The device agent: enrollment, check-ins, updates into A/B slots, local inference and
health telemetry (``docs/fleet-protocol.md``).

State directory layout::

    identity.json     device id, Ed25519 key, token, fleet public key (mode 0600)
    active            the active slot's name ("a" or "b"), replaced atomically
    slots/a/, slots/b/  complete verified bundles (manifest.json, manifest.sig, files)
    journal.jsonl     the update journal (see edgeloop.agent._journal)
    downloads/        the update being staged: manifest, signature, parts/ and files/
    telemetry.jsonl   closed telemetry windows not yet sent (bounded)
    samples/          with --collect-data only: the ring of the last raw inputs and the
                      upload in flight (see edgeloop.agent._samples)
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeloop.agent._client import FleetClient
from edgeloop.agent._errors import NoModel, UpdateFailed
from edgeloop.agent._identity import Identity, new_identity
from edgeloop.agent._journal import Journal, UpdateRecord
from edgeloop.agent._model import LoadedModel, load_model, smoke_test
from edgeloop.agent._predictions import (
    DEFAULT_MAX_PREDICTIONS,
    SequenceCounter,
    check_label,
    confidences,
    parse_prediction_id,
    prediction_id,
)
from edgeloop.agent._samples import SampleRing, SampleUploader
from edgeloop.agent._serve import Inference, LocalServer
from edgeloop.agent._slots import SLOTS, SlotStore
from edgeloop.agent._telemetry import TelemetryBuffer, TelemetryWindow, is_due
from edgeloop.agent._transport import Transport, http_transport
from edgeloop.agent._update import Updater
from edgeloop.errors import (
    BackendUnavailable,
    EdgeloopError,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from edgeloop.fleet.bundle import BundleRejected, load_public_key, run_self_test

__all__ = ["DEFAULT_MAX_BUNDLE_BYTES", "Agent"]

log = logging.getLogger("edgeloop.agent")
DEFAULT_MAX_BUNDLE_BYTES = 256 << 20
DEFAULT_POLL_S = 30.0
PRE_SWITCH = ("assigned", "downloading", "downloaded", "installing", "verifying")
ASSIGNMENT_URLS = ("manifest_url", "signature_url", "files_url")
T = TypeVar("T")


def _assignment(offered: object) -> dict[str, Any] | None:
    """The check-in's assignment if it is one the agent can follow, else None (logged)."""
    if offered is None:
        return None
    if not isinstance(offered, dict) or not all(
        isinstance(offered.get(k), str) and offered[k] for k in ("rollout", "release")
    ):
        log.warning("ignoring a malformed assignment: %r", offered)
        return None
    if not all(isinstance(offered.get(k), str) and offered[k] for k in ASSIGNMENT_URLS):
        log.warning("ignoring an assignment without %s: %r", ", ".join(ASSIGNMENT_URLS), offered)
        return None
    return offered


class Agent:
    """One device. ``recover()`` on start, then ``run_forever()`` (or ``run_once()`` per
    check-in); ``predict``/``scores`` run the active model, ``serve`` exposes it over HTTP.

    >>> agent = Agent("/var/lib/edgeloop", "https://fleet.example", target="rpi4")  # doctest: +SKIP
    >>> agent.recover(); agent.run_forever()  # doctest: +SKIP

    ``clock`` (epoch seconds), ``sleep``, ``http`` (the transport) and ``rng`` are there to be
    replaced in tests; with ``sleep=None`` the agent waits on an event that :meth:`stop` sets.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        server_url: str,
        *,
        target: str,
        attributes: Mapping[str, Any] | None = None,
        device_id: str | None = None,
        enrollment_token: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        http: Transport = http_transport,
        rng: random.Random | None = None,
        telemetry_interval: float = 3600.0,
        telemetry_buffer: int = 1000,
        max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES,
        backoff_initial: float = 2.0,
        backoff_cap: float = 600.0,
        timeout: float = 30.0,
        collect_data: bool = False,
        sample_buffer: int = 256,
        max_predictions: int = DEFAULT_MAX_PREDICTIONS,
    ) -> None:
        if not target:
            raise ValidationFailed("target must name the device's board profile, e.g. 'rpi4'")
        if telemetry_interval <= 0:
            raise ValidationFailed("telemetry_interval must be > 0 seconds")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.target = target
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._lock = threading.RLock()  # one check-in / update at a time
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.telemetry_interval = telemetry_interval
        self.poll_interval_s = DEFAULT_POLL_S
        self.jitter_s = 0.0
        self._enrollment_token = enrollment_token
        self.client = FleetClient(server_url, http, timeout=timeout)
        identity = Identity.load(self.state_dir)
        if identity is None:
            attrs = {**dict(attributes or {}), "target": target}
            identity = new_identity(device_id, server_url, attrs)
            identity.save(self.state_dir)
        elif device_id and device_id != identity.device_id:
            raise ValidationFailed(
                f"{self.state_dir} belongs to device {identity.device_id!r}, not {device_id!r}: "
                "use another --state directory"
            )
        else:  # attributes given again replace the stored ones (sent at enrollment only)
            base = identity.attributes if attributes is None else dict(attributes)
            attrs = {**base, "target": target}
            if identity.server_url != server_url or identity.attributes != attrs:
                identity.server_url, identity.attributes = server_url, attrs
                identity.save(self.state_dir)
        self.identity = identity
        self.journal = Journal(self.state_dir / "journal.jsonl", clock)
        self.slots = SlotStore(self.state_dir)
        self.buffer = TelemetryBuffer(self.state_dir / "telemetry.jsonl", telemetry_buffer)
        self.collect_data = collect_data
        # raw inputs are kept only on a device that opted in to data collection
        self.samples = (
            SampleRing(self.state_dir / "samples", sample_buffer) if collect_data else None
        )
        self.uploader = SampleUploader(
            self.state_dir / "samples", self.samples, lambda: self.device_id
        )
        self.last_samples: list[str] = []
        """Ids of the samples of the last inference (for :meth:`feedback`; collecting only)."""
        self._seqs = SequenceCounter()
        self._local = threading.local()
        self.window = TelemetryWindow(self._now_ms(), max_predictions=max_predictions)
        self._model: LoadedModel | None = None
        self._key: Ed25519PublicKey | None = None
        self._slot_status: dict[str, dict[str, str] | None] = dict.fromkeys(SLOTS)
        self._recovered = False
        self.updater = Updater(
            journal=self.journal,
            slots=self.slots,
            client=self.client,
            downloads=self.state_dir / "downloads",
            target=target,
            max_bundle_bytes=max_bundle_bytes,
            token=lambda: self.identity.device_token,
            public_key=self._public_key,
            progress=self._progress,
            committed=self._on_commit,
        )

    # introspection ------------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    @property
    def model(self) -> LoadedModel | None:
        """The model being served (the committed slot's), or None before the first update."""
        return self._model

    def status(self) -> dict[str, Any]:
        model = self._model
        return {
            "status": "ok" if model is not None else "no-model",
            "device_id": self.device_id,
            "enrolled": self.identity.status == "accepted",
            "slot": model.slot if model else None,
            "release": model.release if model else None,
            "model_version": model.model_version if model else None,
            "runtime": model.runtime if model else None,
        }

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # enrollment ---------------------------------------------------------------------------

    def enroll(self) -> str:
        """Enroll (or finish enrolling): ``"accepted"`` once the device holds a token,
        ``"pending"`` while an admin has not accepted it."""
        ident = self.identity
        if ident.status == "accepted" and ident.device_token:
            return "accepted"
        if ident.status != "pending":
            body: dict[str, Any] = {
                "id": ident.device_id,
                "public_key": ident.public_key(),
                "attributes": ident.attributes,
            }
            if self._enrollment_token:
                body["enrollment_token"] = self._enrollment_token
            if self.collect_data:
                body["data_collection"] = True
            response = self.client.call("POST", "devices/enroll", body=body)
            self._poll_settings(response)
            if response.get("status") == "accepted" and response.get("device_token"):
                self._accept(response)
                return "accepted"
            ident.status = "pending"
            ident.save(self.state_dir)
            if response.get("status") != "accepted":
                return "pending"
        return self._collect_token()

    def _collect_token(self) -> str:
        ident = self.identity
        timestamp = self._now_ms()
        body = {
            "timestamp": timestamp,
            "signature": ident.sign(f"{ident.device_id}:{timestamp}".encode()),
        }
        path = f"devices/{urllib.parse.quote(ident.device_id, safe='')}/token"
        try:
            response = self.client.call("POST", path, body=body)
        except PermissionDenied:
            return "pending"
        self._accept(response)
        return "accepted"

    def _accept(self, response: Mapping[str, Any]) -> None:
        ident = self.identity
        key = str(response.get("fleet_public_key") or "")
        if key and ident.fleet_public_key and key != ident.fleet_public_key:
            log.warning("the server sent another fleet key; keeping the one enrolled with")
        elif key:
            load_public_key(key)  # refuse a malformed key before storing it
            ident.fleet_public_key = key
        if not ident.fleet_public_key:
            raise ValidationFailed("the server accepted the device but sent no fleet_public_key")
        ident.device_token = str(response["device_token"])
        ident.status = "accepted"
        ident.save(self.state_dir)
        self._poll_settings(response)

    def _public_key(self) -> Ed25519PublicKey:
        if self._key is None:
            if not self.identity.fleet_public_key:
                raise UpdateFailed("signature", "the device holds no fleet public key yet")
            self._key = load_public_key(self.identity.fleet_public_key)
        return self._key

    def _poll_settings(self, response: Mapping[str, Any]) -> None:
        for name, attr in (("poll_interval_s", "poll_interval_s"), ("jitter_s", "jitter_s")):
            value = response.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                setattr(self, attr, float(value))

    # talking to the server ----------------------------------------------------------------

    def _device_call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A ``/device/...`` call; a refused token is collected again once (it rotates)."""
        try:
            return self.client.call("POST", path, token=self.identity.device_token, body=body)
        except Unauthenticated:
            if self._collect_token() != "accepted":
                raise
            return self.client.call("POST", path, token=self.identity.device_token, body=body)

    def _checkin(self, update: Mapping[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "firmware": str(self.identity.attributes.get("firmware", "")),
            "slots": dict(self._slot_status),
            "active": self.slots.active(),
        }
        if update is not None:
            body["update"] = dict(update)
        response = self._device_call("device/checkin", body)
        self._poll_settings(response)
        return response

    @staticmethod
    def _update_body(update: UpdateRecord, state: str, reason: str = "") -> dict[str, Any]:
        return {
            "rollout": update.rollout,
            "release": update.release,
            "state": state,
            "reason": reason,
            "bytes_downloaded": update.bytes_downloaded,
            "bytes_saved": update.bytes_saved,
        }

    def _progress(self, update: UpdateRecord, state: str) -> None:
        """Best effort: a progress report that does not arrive changes nothing."""
        try:
            self._checkin(self._update_body(update, state))
        except EdgeloopError as exc:
            log.info("could not report %s: %s", state, exc)

    def _report_outcomes(self) -> dict[str, Any] | None:
        """Send the terminal states the server has not acknowledged; the last response."""
        response = None
        update = self.journal.state().update
        if update is None:
            return None
        for state, reason in update.unreported():
            response = self._checkin(self._update_body(update, state, reason))
            self.journal.append("reported", state=state)
        return response

    # the check-in loop --------------------------------------------------------------------

    def run_once(self) -> dict[str, Any] | None:
        """One check-in: report, take an assignment and carry it to its end, send telemetry.
        Returns the check-in response (None while enrollment is pending). Raises
        :class:`~edgeloop.errors.BackendUnavailable` when the server cannot be reached."""
        with self._lock:
            if not self._recovered:
                self.recover()
            self.tick_telemetry()
            if self.enroll() != "accepted":
                return None
            response = self._report_outcomes()
            update = self.journal.state().update
            if response is None:
                current = None
                if update is not None and not update.finished:
                    current = self._update_body(update, update.state())
                response = self._checkin(current)
            assignment = _assignment(response.get("assignment"))
            if update is not None and not update.finished:
                if assignment is None or (
                    (assignment.get("rollout"), assignment.get("release"))
                    == (update.rollout, update.release)
                ):
                    assignment = None  # the update in progress: resume it
                else:
                    rollout = assignment.get("rollout")
                    self.updater.abandon(update, "superseded", f"rollout {rollout} replaced it")
                self._process()
            if assignment is not None:
                last = self.journal.state().update
                if last is None or (last.rollout, last.release) != (
                    assignment.get("rollout"),
                    assignment.get("release"),
                ):
                    self.updater.start(assignment)
                    self._process()
            self._collect(response.get("collection"))
            self.flush_telemetry()
            return response

    def _process(self) -> None:
        try:
            self.updater.advance(network=True)
        finally:
            self._refresh_slots()
        try:
            self._report_outcomes()
        except EdgeloopError as exc:
            log.info("could not report the update's outcome yet: %s", exc)

    def next_poll_delay(self) -> float:
        """The server's poll interval, plus or minus its jitter."""
        jitter = self._rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0
        return max(0.0, self.poll_interval_s + jitter)

    def backoff_delay(self, failures: int) -> float:
        """After ``failures`` failed check-ins in a row: exponential, capped, jittered down
        by up to half (so devices that lost the server together do not return together)."""
        base = min(self.backoff_cap, self.backoff_initial * 2.0 ** max(0, failures - 1))
        return base * self._rng.uniform(0.5, 1.0)

    def run_forever(self) -> None:
        """Check in every poll interval (backing off on errors) and close telemetry windows on
        schedule, until :meth:`stop`."""
        self._stop.clear()
        failures = 0
        next_checkin = self._clock()
        while not self._stop.is_set():
            if self._clock() >= next_checkin:
                try:
                    self.run_once()
                    failures = 0
                    next_checkin = self._clock() + self.next_poll_delay()
                except Exception as exc:
                    failures += 1
                    delay = self.backoff_delay(failures)
                    log.warning("check-in failed (%s); retrying in %.1f s", exc, delay)
                    next_checkin = self._clock() + delay
            else:
                self.tick_telemetry()
            window_due = self.window.start_ms / 1000 + self.telemetry_interval
            wait = max(0.0, min(next_checkin, window_due) - self._clock())
            if self._sleep is not None:
                self._sleep(wait)
            else:
                self._stop.wait(wait)

    def stop(self) -> None:
        self._stop.set()

    # recovery -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Make the state directory consistent after a crash: finish or roll back the update
        in progress, and point ``active`` at a slot that verifies. What happened is reported
        at the next check-in."""
        with self._lock:
            self.journal.compact()
            state = self.journal.state()
            update = state.update
            if update is not None and not update.finished:
                if update.last == "switched":
                    self.journal.append(
                        "failed",
                        reason="crash",
                        message="the agent stopped while the new model was on trial",
                        switched=True,
                    )
                elif update.last in PRE_SWITCH and self.slots.active() != state.committed_slot:
                    self.slots.set_active(state.committed_slot)
            if self.identity.fleet_public_key:
                self.updater.advance(network=False, report=False)
                self.updater.tidy()
            self._ensure_active()
            self._refresh_slots()
            self._recovered = True

    def _load(self, slot: str, *, gate: bool) -> LoadedModel | None:
        try:
            manifest, files = self.slots.verify(slot, self._public_key())
            if gate:
                run_self_test(manifest, files)
            model = load_model(manifest, files, slot=slot)
            if gate:
                smoke_test(model, manifest)
            return model
        except (BundleRejected, UpdateFailed, OSError) as exc:
            log.warning("slot %s is not usable: %s", slot, exc)
            return None

    def _ensure_active(self) -> None:
        state = self.journal.state()
        if not self.identity.fleet_public_key:
            self._set_model(None)
            return
        update = state.update
        busy = update.slot if update is not None and not update.finished else None
        committed, active = state.committed_slot, self.slots.active()
        chosen: str | None = None
        model: LoadedModel | None = None
        ordered = [committed, active, *SLOTS]
        for slot in dict.fromkeys(s for s in ordered if s is not None and s != busy):
            if not self.slots.has_bundle(slot):
                continue
            # only the committed slot is trusted on its signature; any other must pass the
            # self-test too, so a bundle that failed it is never brought back
            model = self._load(slot, gate=slot != committed)
            if model is not None:
                chosen = slot
                break
        if active != chosen:
            log.warning("active slot %s does not verify; switching to %s", active, chosen)
            self.slots.set_active(chosen)
        if chosen != committed:
            self.journal.append(
                "snapshot", slot=chosen, release=model.release if model is not None else None
            )
        self._set_model(model)

    def _refresh_slots(self) -> None:
        for slot in SLOTS:
            status: dict[str, str] | None = None
            if self.identity.fleet_public_key and self.slots.has_bundle(slot):
                try:
                    manifest, _ = self.slots.verify(slot, self._public_key())
                    status = {
                        "release": str(manifest["release"]),
                        "bundle_digest": self.slots.digest(slot),
                    }
                except (BundleRejected, UpdateFailed, OSError):
                    status = None
            self._slot_status[slot] = status

    def _set_model(self, model: LoadedModel | None) -> None:
        current = self._model
        if current is not None and model is not None and current.release == model.release:
            self._model = model
            return
        if self.window.inference_count:  # a window belongs to one release
            self._close_window(self._now_ms())
        self._model = model
        # the monitoring window is binned on the active bundle's reference (none: no sketch)
        self.window.set_reference(model.reference if model is not None else None)

    def _on_commit(self, model: LoadedModel) -> None:
        self._set_model(model)

    # inference ----------------------------------------------------------------------------

    def _timed(self, run: Callable[[LoadedModel], T]) -> tuple[T, LoadedModel]:
        """Run the active model once, counting the call, its latency and any error."""
        start = time.perf_counter()
        ok = False
        model = self._model
        try:
            if model is None:
                raise NoModel("no model is installed yet: the device waits for its first update")
            result = run(model)
            ok = True
            return result, model
        finally:
            self.window.record((time.perf_counter() - start) * 1000.0, ok=ok)

    def _predict(
        self, model: LoadedModel, x: npt.ArrayLike
    ) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Labels and scores; with a reference, the monitoring window sees both."""
        labels, scores = model.predict_scores(x)
        if self.window.sketching:
            self.window.observe(x, scores)
        return labels, scores

    def _run(self, x: npt.ArrayLike) -> tuple[list[str], npt.NDArray[np.float32], Inference]:
        """One inference: labels, scores, and its record (prediction ids, model version)."""
        self._local.ids = []
        (labels, scores), model = self._timed(lambda m: self._predict(m, x))
        at = self._now_ms()
        seqs = self._capture(x, at)
        if seqs is None or len(seqs) != len(labels):
            seqs = self._seqs.take(len(labels))
        ids = [prediction_id(self.device_id, at, seq) for seq in seqs]
        if self.window.max_predictions:
            full = not self.window.has_room()
            conf = [None] * len(ids) if full else confidences(scores, model.reference)
            self.window.add_predictions(ids, labels, conf, at)
        self._local.ids = ids
        return labels, scores, Inference(labels, model.model_version, model.release, ids)

    @property
    def last_predictions(self) -> list[str]:
        """The prediction ids of this thread's last :meth:`predict` or :meth:`scores` call
        (one per sample; :meth:`infer` returns them with the labels)."""
        ids: list[str] = getattr(self._local, "ids", [])
        return list(ids)

    def infer(self, x: npt.ArrayLike) -> Inference:
        """Labels for a batch of samples, with the version of the model that gave them and
        a prediction id per sample (``<device id>/<ms>-<seq>``, for :meth:`feedback`)."""
        return self._run(x)[2]

    def predict(self, x: npt.ArrayLike) -> list[str]:
        """Labels of a batch of samples (``(batch, n_features)``) from the active model;
        :class:`NoModel` before the first update, ``ValueError`` for malformed input. The
        prediction ids are in :attr:`last_predictions`."""
        return self._run(x)[0]

    def scores(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Float scores ``(batch, units)`` of the active model (one unit: a binary logit);
        the prediction ids are in :attr:`last_predictions`."""
        return self._run(x)[1]

    # data collection (opted-in devices only) ----------------------------------------------

    def _capture(self, x: npt.ArrayLike, at: int) -> list[int] | None:
        """Keep the inputs (collecting devices only); their sequence numbers."""
        if self.samples is None:
            return None
        try:
            seqs = self.samples.append(x, at)
        except (OSError, ValueError) as exc:  # collection must never break inference
            log.warning("could not keep the input for data collection: %s", exc)
            return None
        if seqs:
            self._seqs.advance_to(seqs[-1])
        self.last_samples = [str(seq) for seq in seqs]
        return seqs

    def feedback(self, sample_id: str | int, label: str) -> bool:
        """Ground truth given on site for a prediction: its id (from :meth:`infer`,
        :attr:`last_predictions` or the local endpoint) or, on a collecting device, a kept
        sample's number (from :attr:`last_samples`). The label goes to the server with the
        next telemetry window, and onto the kept sample (it travels with it when a collection
        asks for it). False if the id is not one of this device's predictions, or the
        sample is no longer kept, or the label is not a class name (1-256 characters)."""
        try:
            text = check_label(label)
        except ValidationFailed:
            return False
        key = str(sample_id)
        if key.isdigit():
            if self.samples is None:
                return False
            captured = self.samples.captured(int(key))
            if captured is None or not self.samples.label(int(key), text):
                return False
            return self.window.add_label(prediction_id(self.device_id, captured, int(key)), text)
        parsed = parse_prediction_id(self.device_id, key)
        if parsed is None:
            return False
        at, seq = parsed
        if self.samples is not None:
            self.samples.label(seq, text, captured_at=at)
        return self.window.add_label(key, text)

    def _collect(self, request: object) -> None:
        """Answer a collection request (or finish an interrupted upload)."""
        if request is None and not self.uploader.pending_path.exists():
            return
        try:
            self.uploader.handle(self._device_call, request)
        except EdgeloopError as exc:
            log.info("could not upload samples yet: %s", exc)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> LocalServer:
        """Serve ``POST /predict`` and ``GET /healthz`` from a background thread."""
        return LocalServer(self, host, port)

    # telemetry ----------------------------------------------------------------------------

    def _close_window(self, now_ms: int) -> None:
        model = self._model
        self.buffer.append(
            self.window.close(
                now_ms,
                release=model.release if model else None,
                model_version=model.model_version if model else None,
            )
        )

    def tick_telemetry(self) -> bool:
        """Close the window into the buffer if its interval is over (works offline)."""
        now = self._now_ms()
        if is_due(self.window.start_ms, now, self.telemetry_interval):
            self._close_window(now)
            return True
        return False

    def flush_telemetry(self) -> int:
        """Send buffered windows, oldest first, until one does not go through; returns how
        many were sent. A window the server refuses (4xx) is logged and dropped."""
        sent = 0
        try:
            for record in self.buffer.iter_pending():
                try:
                    self._device_call("device/telemetry", record)
                except (BackendUnavailable, Unauthenticated):
                    break
                except EdgeloopError as exc:
                    log.warning("the server refused a telemetry window: %s", exc)
                sent += 1
        finally:
            self.buffer.remove_first(sent)
        return sent
