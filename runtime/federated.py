"""The device's part of federated learning: one round's update of the item table from the local history.

For each next-item step of the user's history (the newest `max_examples`),
the bundle's own user encoder turns the items before it into a user vector,
exactly as a request does; the softmax of that vector over the catalog (the
scan a request makes anyway) gives the gradient of every item row
(federated collaborative filtering: the encoder stays as shipped, the table
learns). The device changes only the rows of the items it consumed plus the
`negatives` rows the loss pushes hardest (its hard negatives; in a round with DP,
`upload_rows` rows in all, so the upload's size tells nothing of the history): sampling
negatives uniformly instead was measured to give a gradient too noisy to
help (cosine 0.39 with the full one on the demo world). A few local steps
later, the change of those rows is clipped to the L2 bound `clip` and sent in
the format of fed_format.py. The same gradients move the user's personal
vector (personal.py), which is kept on the device and never sent.

A device can decline: the user has not opted in (Consent's default), the app says not now (battery,
metered network), the round has no DP while the user asked for it, or the
round's epsilon does not fit the privacy budget, or it already took part in
this round of this space (a retry would send a second, different upload).
Every round, taken or declined, is entered in the privacy ledger; epsilon is
charged before any work, so a round that fails halfway still counts as spent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.runtime import checks
from edgerec.runtime.fed_format import ENCODINGS, ClientUpdate, clip_for_upload, encode_update
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.personal import load_personal, save_personal
from edgerec.runtime.privacy_ledger import PrivacyLedger, in_memory
from edgerec.runtime.user_state import read_state

ENCODE_BATCH = 128  # histories per encoder call
FP16_MAX = float(np.finfo(np.float16).max)  # 65504


@dataclass(frozen=True)
class RoundTask:
    """What the server asks of every device in one round."""

    round: int
    space: str  # embedding-space id of the bundle whose table the round trains
    lr: float = 0.002  # local step size on the item rows (the loss is summed over examples)
    steps: int = 2  # local gradient steps
    negatives: int = 128  # rows changed besides the consumed items: those the loss pushes hardest
    temperature: float = 0.05  # of the softmax over cosine scores (the exporter's default model has 0.05)
    clip: float = 0.2  # L2 bound of the whole update
    max_examples: int = 500  # newest next-item steps of the history used
    epsilon: float | None = None  # what taking part costs in the ledger (None: a round without DP)
    encoding: str = "int8"  # upload encoding (fed_format.ENCODINGS)
    # a round with DP: every upload holds exactly this many rows (the whole table if smaller), so the count
    # says nothing of how many items the device consumed (without DP: its items plus `negatives`)
    upload_rows: int = 256

    def check(self) -> RoundTask:
        """ConfigError for a field of the wrong kind or range (the upload format holds the round in 32 bits)."""
        checks.integer(self.round, "RoundTask.round", 0, (1 << 32) - 1)
        if not isinstance(self.space, str):  # "" until the server fills in its bundle's space
            raise ConfigError(f"RoundTask.space must be an embedding-space id string (got {type(self.space).__name__})")
        for name, low, high in (("lr", 0.0, 1e3), ("clip", 0.0, 1e9), ("temperature", 1e-4, 1e4)):
            checks.number(getattr(self, name), f"RoundTask.{name}", low, high, low_open=True)
        for name, high in (("steps", 1000), ("negatives", 1_000_000), ("max_examples", 1_000_000),
                           ("upload_rows", 1_000_000)):
            checks.integer(getattr(self, name), f"RoundTask.{name}", 1, high)
        checks.number(self.epsilon, "RoundTask.epsilon", 0.0, 1e6, allow_none=True, low_open=True)
        checks.choice(self.encoding, tuple(ENCODINGS), "RoundTask.encoding")
        if self.encoding == "fp16" and self.clip > FP16_MAX:  # a value past it would arrive as inf, after the charge
            raise ConfigError(f"RoundTask.clip of an fp16 round is at most {FP16_MAX:g}, float16's largest value "
                              f"(got {self.clip:g}); lower the clip or use int8")
        return self


@dataclass
class Consent:
    """What the user and the app allow."""

    opted_in: bool = False  # privacy by default: a device takes part only once its user said yes
    allowed: bool = True  # the app's condition right now: charging, unmetered network, idle
    without_dp: bool = False  # also take part in rounds that carry no DP guarantee

    def check(self) -> Consent:
        for name in ("opted_in", "allowed", "without_dp"):  # "no" is truthy: only True or False decides
            checks.flag(getattr(self, name), f"Consent.{name}")
        return self


@dataclass
class Personal:
    """How the personal vector learns (it never leaves the device)."""

    enabled: bool = True
    lr: float = 0.01
    l2: float = 0.05  # pulls it back to zero, so little history moves it little

    def check(self) -> Personal:
        checks.flag(self.enabled, "Personal.enabled")
        checks.number(self.lr, "Personal.lr", 0.0, 1e3)
        checks.number(self.l2, "Personal.l2", 0.0, 1e3)
        return self


@dataclass
class RoundResult:
    round: int
    update: ClientUpdate | None  # None when the device declined
    payload: bytes | None  # what is uploaded
    refused: str | None  # why the device declined
    examples: int = 0
    norm: float = 0.0  # L2 norm of the update before clipping
    ms: float = 0.0  # device time of the round


def take_part(rec, user: str, task: RoundTask, *, history: HistoryStore | None = None,
              table: np.ndarray | None = None, consent: Consent | None = None, ledger: PrivacyLedger | None = None,
              personal: Personal | None = None, now: float | None = None) -> RoundResult:
    """One round on the device for `user` of `rec` (a Recommender): the update, or why it declined.

    history: the device's store (default: rec's). table: the round's item vectors as the server sent
    them (default: the bundle's table).
    """
    start = time.perf_counter()
    checks.instance(task, RoundTask, "task", allow_none=False).check()  # every argument before the ledger
    checks.text(user, "user")
    consent = checks.instance(consent, Consent, "consent") or Consent()
    personal = checks.instance(personal, Personal, "personal") or Personal()
    consent.check(), personal.check()
    now = checks.timestamp(now, "now")
    table = _check_table(table, rec.catalog.base_count, rec.manifest.dim)
    history = rec.history if history is None else checks.instance(history, HistoryStore, "history")
    ledger = _ledger(ledger, history, "a federated round")
    question = f"federated round {task.round}"
    key = f"federated round {task.round} of space {task.space}"  # the ledger holds one entry of it

    def decline(reason: str) -> RoundResult:
        ledger.note(f"{question}: declined ({reason})", now)
        return RoundResult(task.round, None, None, reason, ms=(time.perf_counter() - start) * 1e3)

    if not consent.opted_in:
        return decline("the user has not opted in")
    if not consent.allowed:
        return decline("not now (the app's battery or network condition)")
    if task.space != rec.manifest.embedding_space:
        return decline("the round trains another bundle than the one this device serves")
    if task.epsilon is None and not consent.without_dp:
        return decline("the round has no differential privacy")
    cat = rec.catalog
    consumed = [r for r in read_state(history, cat, user).consumed if r < cat.base_count]
    if len(consumed) < 2:
        return decline("too little history")
    # a retried round would send a second, different upload (the personal vector moved): the device counts twice
    again = "already took part in this round (an app re-sends its first upload's bytes)"
    if ledger.taken(key):
        return decline(again)
    try:
        if task.epsilon is None:
            ledger.note(f"{question} (no DP)", now, key=key)
        else:
            ledger.charge(question, task.epsilon, now, key=key)
    except PrivacyBudgetError:
        return decline(again if ledger.taken(key) else "privacy budget")

    update, examples, norm = _local_update(rec, history, user, consumed, task, table, personal)
    if task.epsilon is not None:  # DP-FedAvg weighs devices alike: the history's size is not sent outside epsilon
        update.weight = 1.0
    payload = encode_update(update, task.encoding)
    return RoundResult(task.round, update, payload, None, examples, norm, (time.perf_counter() - start) * 1e3)


def _ledger(ledger, history: HistoryStore, what: str) -> PrivacyLedger:
    """The ledger a round is entered in: the one given, or the history's own, which must live in a file."""
    if checks.instance(ledger, PrivacyLedger, "ledger") is not None:
        return ledger
    if in_memory(history):  # its ledger would start empty at every app start, as PrivateReporter's would
        raise ConfigError(f"{what} needs the history in a file: a privacy ledger kept in memory forgets what was "
                          "spent when the app restarts, so no budget would hold; open the Recommender with "
                          "history=PATH (a simulation passes ledger=PrivacyLedger(store, simulation=True))")
    return PrivacyLedger(history)


def _check_table(table, rows: int, dim: int) -> np.ndarray | None:
    """The server's item vectors for the round: one finite row per bundle item (else ConfigError)."""
    if table is None:
        return None
    try:
        with np.errstate(over="ignore"):  # a value past float32 becomes inf, refused below: no warning in the app's log
            table = np.asarray(table, np.float32)
    except (TypeError, ValueError):
        raise ConfigError(f"the round's table must be a ({rows}, {dim}) array of numbers") from None
    if table.shape != (rows, dim) or not np.all(np.isfinite(table)):
        raise ConfigError(f"the round's table must be a ({rows}, {dim}) array of finite numbers (got shape "
                          f"{table.shape}); ask the server for the table of this bundle")
    return table


def user_vectors(rec, consumed: list[int], positions: np.ndarray) -> np.ndarray:
    """The encoder's user vector before each position of `consumed` (the request path's encoder)."""
    cat, encoder = rec.catalog, rec.models.encoder
    length = encoder.max_len
    contexts = [cat.encoder_inputs(consumed[max(0, t - length):t]) for t in positions]
    out = [encoder.encode(contexts[i:i + ENCODE_BATCH]) for i in range(0, len(contexts), ENCODE_BATCH)]
    return np.concatenate(out).astype(np.float32)


def example_positions(events: int, max_examples: int) -> np.ndarray:
    """The next-item steps a round learns from: the newest `max_examples` positions after the first."""
    return np.arange(max(1, events - max_examples), events)


def _local_update(rec, history, user, consumed, task, table, personal):
    positions = example_positions(len(consumed), task.max_examples)
    users = user_vectors(rec, consumed, positions)
    targets = np.asarray(consumed, np.int64)[positions]
    base = table if table is not None else rec.catalog.stored.dequantize()
    space, dim = rec.manifest.embedding_space, rec.manifest.dim
    offset = load_personal(history, user, space, dim) if personal.enabled else np.zeros(dim, np.float32)
    rows = start = delta = None
    for _ in range(task.steps):
        current = base if rows is None else _patched(base, rows, start + delta)
        grad, toward = softmax_gradients(users + offset, targets, current, task.temperature, rows, personal.enabled)
        if rows is None:  # the targets and the rows the loss pushes hardest: what this device changes
            rows = changed_rows(grad, targets, task)
            grad = grad[rows]
            start, delta = base[rows], np.zeros((len(rows), base.shape[1]), np.float64)
        # the change itself, in float64: a tiny step added to a row's float32 value vanished (all-zero rows)
        delta -= task.lr * grad.astype(np.float64)
        if personal.enabled:  # the offset follows the mean gradient, pulled back towards zero
            offset = offset - personal.lr * (toward + personal.l2 * offset)
    # never upload or keep garbage: the offset is kept as float16, beyond whose range it would read back as inf
    if not (np.all(np.isfinite(delta)) and np.all(np.abs(offset) <= FP16_MAX)):
        raise ConfigError("the round's lr and temperature (or Personal.lr) made the local update overflow; nothing "
                          "was sent or saved (the round's epsilon stays spent); ask the server for a smaller lr, "
                          "or lower Personal.lr")
    norm = float(np.linalg.norm(delta))
    delta = clip_for_upload(delta, task.clip, task.encoding)  # the bound holds for what the server decodes
    if personal.enabled:
        save_personal(history, user, space, offset)
    update = ClientUpdate(task.round, space, rows.astype(np.int64), delta, float(len(positions)))
    return update, len(positions), norm


def changed_rows(grad: np.ndarray, targets: np.ndarray, task: RoundTask) -> np.ndarray:
    """The rows a device changes, ascending: its consumed items, then the rows whose gradient is largest
    (its hard negatives). Without DP, its items plus `task.negatives`; with DP, `task.upload_rows` whatever
    the history (a history with more items keeps those the loss pulls hardest)."""
    strength = np.einsum("nd,nd->n", grad, grad)
    distinct = np.unique(targets)
    keep = min(len(strength), len(distinct) + task.negatives if task.epsilon is None else task.upload_rows)
    if len(distinct) > keep:
        return np.sort(distinct[np.argsort(-strength[distinct], kind="stable")[:keep]])
    strength[distinct] = np.inf
    return np.sort(np.argpartition(-strength, keep - 1)[:keep])


def step_losses(rec, user: str, table: np.ndarray, rows: np.ndarray, delta: np.ndarray, steps: list[float], *,
                history: HistoryStore | None = None, consent: Consent | None = None,
                ledger: PrivacyLedger | None = None, now: float | None = None) -> np.ndarray | None:
    """Federated evaluation of a round's step sizes on the device: for each step, 1 - 1/log2(rank + 2) of
    the user's newest item, predicted from the items before it, over `table` with `rows` moved by that
    step along `delta` (`moved_rows`, as the server would). (The softmax loss, tried first, favoured
    steps that lowered NDCG.) None when the device declines or has too little history."""
    checks.text(user, "user")
    consent = (checks.instance(consent, Consent, "consent") or Consent()).check()
    now = checks.timestamp(now, "now")
    table = _check_table(table, rec.catalog.base_count, rec.manifest.dim)
    if table is None:
        raise ConfigError("step_losses scores moves of the round's table: pass the table the server sent")
    rows, delta, steps = _check_move(rows, delta, steps, table.shape)
    history = rec.history if history is None else checks.instance(history, HistoryStore, "history")
    ledger = _ledger(ledger, history, "the federated evaluation of step sizes")
    if not (consent.opted_in and consent.allowed and consent.without_dp):  # its answer carries no DP
        return None
    cat = rec.catalog
    consumed = [r for r in read_state(history, cat, user).consumed if r < cat.base_count]
    if len(consumed) < 2:
        return None
    ledger.note("federated evaluation of step sizes (no DP)", now)
    query = user_vectors(rec, consumed, np.array([len(consumed) - 1]))[0]
    scores, target = np.asarray(table, np.float32) @ query, consumed[-1]
    losses = []
    for step in steps:
        moved = scores.copy()
        moved[rows] = moved_rows(table[rows], delta, step) @ query
        rank = int(np.sum(moved > moved[target]))
        losses.append(1.0 - 1.0 / np.log2(rank + 2.0))
    return np.array(losses)


def _check_move(rows, delta, steps, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """A round's proposed move: unique row ids of the table, one finite change row each, finite steps."""
    try:
        rows, delta = np.asarray(rows), np.asarray(delta, np.float32)
    except (TypeError, ValueError):
        raise ConfigError("a proposed move needs row ids and a numeric change per row") from None
    steps = [checks.number(s, "each step", 0.0, 1e9) for s in checks.values(steps, "steps", "step sizes")]
    n, dim = shape
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or (len(rows) and (rows.min() < 0 or rows.max() >= n)) \
            or len(np.unique(rows)) != len(rows) or delta.shape != (len(rows), dim) \
            or not np.all(np.isfinite(delta)):
        raise ConfigError(f"a proposed move needs unique row ids below {n} and one finite change row of "
                          f"{dim} values each (got {rows.shape} ids, changes {delta.shape})")
    return rows, delta, steps


def moved_rows(values: np.ndarray, delta: np.ndarray, step: float) -> np.ndarray:
    """Rows moved by `step` along `delta` and put back on the unit sphere (as bundles ship them)."""
    out = np.asarray(values, np.float32) + np.float32(step) * np.asarray(delta, np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def _patched(base: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.array(base, np.float32)
    out[rows] = values
    return out


def softmax_gradients(users: np.ndarray, targets: np.ndarray, table: np.ndarray, temperature: float,
                       rows: np.ndarray | None, offset: bool):
    """Gradients of the summed softmax loss over the whole catalog: for `rows` of the table (every row
    when None) and, with `offset`, for the user-side offset (mean over the examples)."""
    grad = np.zeros((len(table) if rows is None else len(rows), table.shape[1]), np.float32)
    toward = np.zeros(table.shape[1], np.float64)
    for start in range(0, len(users), ENCODE_BATCH):
        query = users[start:start + ENCODE_BATCH] / temperature
        logits = query @ table.T
        logits -= logits.max(1, keepdims=True)
        weight = np.exp(logits)
        weight /= weight.sum(1, keepdims=True)
        weight[np.arange(len(query)), targets[start:start + ENCODE_BATCH]] -= 1.0  # d loss / d logit
        grad += (weight if rows is None else weight[:, rows]).T @ query
        if offset:
            toward += (weight @ table).sum(0) / temperature
    return grad, (toward / len(users)).astype(np.float32)
