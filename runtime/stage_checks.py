"""What the runner does around an app's own stage (one the app added, not one the runtime made).

An app stage runs on a private copy of the request (`isolated`): the short
arrays are copied, the catalog-long ones are read-only views, the user's
state, the policy and the filters are copies and the user's cache entry is
hidden, so neither a stage
that fails half-way nor one that edits the state in place changes what
outlives the stage (the list, the cached state). What it leaves is then
checked (`check`): a list the runtime cannot show is that stage's failure,
not a wrong list for the user or an error blamed on a later stage.
"""

from __future__ import annotations

import copy
import math
from numbers import Real

import numpy as np

from edgerec.runtime.policies import filter_mask
from edgerec.runtime.request import Recommendation, Request, UserState

POOL_SIZED = ("pool", "pool_scores", "replay", "vectors", "relevance", "scorer_features")  # one row per pool row
SHORT = (*POOL_SIZED, "order", "head", "query", "vector")  # copied: short-list or vector sized
CATALOG_SIZED = ("scores", "tiers")  # read-only views: a copy would cost a pass over the catalog
FIXED = ("user", "k", "catalog")  # what the app asked and what the checks read: no stage changes them


class ListError(ValueError):
    """The request an app stage left breaks a rule of the list (the runner treats it as the stage's failure)."""


def isolated(request: Request) -> Request:
    """A copy of the request an app stage may change at will: its changes reach nothing else."""
    new = copy.copy(request)
    for name in SHORT:
        value = getattr(new, name)
        if isinstance(value, np.ndarray):
            setattr(new, name, value.copy())
    for name in CATALOG_SIZED:
        value = getattr(new, name)
        if isinstance(value, np.ndarray):
            view = value.view()
            view.flags.writeable = False
            setattr(new, name, view)
    if isinstance(request.state, UserState):
        new.state = state_copy(request.state)
    # the policy is the recommender's own (rec.policy) and the filters the caller's: a stage that set
    # a field or appended to a list changed every later request, or the app's object
    new.policy, new.filters = _fields_copy(request.policy), _fields_copy(request.filters)
    new.entry = None  # the user's cache entry: for_user() builds anew, nothing is stored in it
    new.results = [_result_copy(r) for r in request.results] if isinstance(request.results, list) else request.results
    new.replay_plays = dict(request.replay_plays) if isinstance(request.replay_plays, dict) else request.replay_plays
    return new


def state_copy(state: UserState) -> UserState:
    return UserState(list(state.consumed), set(state.excluded), list(state.liked), list(state.disliked),
                     copy.copy(state.tags), copy.copy(state.languages), list(state.loved), list(state.finished),
                     {kind: list(values) for kind, values in state.choices.items()})


def _result_copy(result):
    if not isinstance(result, Recommendation):
        return result
    new = _shallow(result)  # not copy.copy: its generic protocol cost more than the rest of the checks
    new.meta, new.reason = dict(result.meta), _shallow(result.reason)
    return new


def _fields_copy(obj):
    """`obj` with its own copy of every container field (Policy.extra, the Filters lists): a stage's
    change in place reaches only the copy."""
    new = _shallow(obj)
    if new is not obj:
        new.__dict__.update({name: _containers(value) for name, value in obj.__dict__.items()})
    return new


def _containers(value):
    """`value` with every list, dict and set in it copied, other objects shared (copy.deepcopy fails on
    what an app may keep in Policy.extra: a lock, a model)."""
    if isinstance(value, dict):
        return {k: _containers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_containers(v) for v in value]
    if isinstance(value, set):
        return set(value)  # its members are hashable: not containers that change in place
    return value


def _shallow(obj):
    if not hasattr(obj, "__dict__"):
        return obj
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


def same_state(a: UserState, b: UserState) -> bool:
    """a == b, with the Counters compared as dicts (Counter.__eq__ runs in Python: 20x slower)."""
    return (a.consumed == b.consumed and a.excluded == b.excluded and a.liked == b.liked
            and a.disliked == b.disliked and a.loved == b.loved and a.finished == b.finished
            and dict.__eq__(a.tags, b.tags) is True and dict.__eq__(a.languages, b.languages) is True
            and a.choices == b.choices)


def settled(out: Request, before: Request, counts) -> Request:
    """The stage's copy, with what belongs to the runner put back: the counters, the drift figures,
    and the user's cached state and entry when the stage left the state as it was (a changed state
    stays this request's own, and later stages build what they derive from it anew)."""
    out.counts, out.top_scores = counts, before.top_scores
    if isinstance(out.state, UserState) and isinstance(before.state, UserState) and same_state(out.state, before.state):
        out.state, out.entry = before.state, before.entry
    return out


def check(request: Request, before: Request) -> None:
    """ListError saying what is wrong with the request an app stage left (`before`: as it was given)."""
    for name in FIXED:
        now, was = getattr(request, name), getattr(before, name)
        if now is not was and (name == "catalog" or now != was):
            raise ListError(f"it changed the request's {name!r}, which no stage may change")
    if request.done and not before.done:
        raise ListError("it set done=True, the runtime's own flag (to show nothing, leave an empty order)")
    pool = request.pool
    if pool is not None:
        if not _ints(pool):
            raise ListError(f"pool must be a 1-D integer array of catalog rows (got {_kind(pool)})")
        for name in POOL_SIZED[1:]:
            value = getattr(request, name)
            if value is not None and (not isinstance(value, np.ndarray) or len(value) != len(pool)):
                raise ListError(f"{name} must hold one value per pool row ({len(pool)}); it holds {_kind(value)}")
    relevance = request.relevance
    if relevance is not None and (relevance.dtype.kind not in "fiub" or np.isnan(relevance).any()):
        raise ListError("relevance must be real numbers without NaN")
    if request.order is not None:
        _check_order(request, before)
    _check_results(request, before)


def _check_order(request: Request, before: Request) -> None:
    order, pool, k, cat = request.order, request.pool, request.k, request.catalog
    if pool is None or not _ints(order):
        raise ListError(f"order must be a 1-D integer array of positions into the pool (got {_kind(order)})")
    if len(order) > k:
        raise ListError(f"order holds {len(order)} positions, more than k={k}")
    if len(order) and (int(order.min()) < 0 or int(order.max()) >= len(pool)):
        raise ListError(f"order holds a position outside the pool (positions are 0 to {len(pool) - 1})")
    if len(set(order.tolist())) != len(order):
        raise ListError("order holds the same position twice")
    if request.relevance is not None and not np.isfinite(request.relevance[order]).all():
        raise ListError("an item of the list has no finite relevance")
    shown = pool[order]
    if len(shown) and (int(shown.min()) < 0 or int(shown.max()) >= len(cat)):
        raise ListError(f"the list holds a row that is not one of the catalog's {len(cat)} rows")
    inactive = cat.inactive_rows()
    if len(inactive) and np.isin(shown, inactive).any():
        raise ListError("the list holds an item removed from the catalog")
    state, replays = before.state, request.replay_plays or {}
    if state is not None and any(row in state.excluded and row not in replays for row in shown.tolist()):
        raise ListError("the list holds an item the user consumed or turned down (the seen rule)")
    if before.filters is not None and not filter_mask(cat, shown, before.filters).all():
        raise ListError("the list holds an item the request's filters leave out")


def _check_results(request: Request, before: Request) -> None:
    results = request.results
    if not isinstance(results, list):
        raise ListError(f"results must be a list of Recommendations (got {_kind(results)})")
    if not results:
        return
    if len(results) > request.k:
        raise ListError(f"results hold {len(results)} items, more than k={request.k}")
    if not all(isinstance(r, Recommendation) and isinstance(r.item_id, str) for r in results):
        raise ListError("results must be Recommendations with a string item_id")
    ids = [r.item_id for r in results]
    if len(set(ids)) != len(ids):
        raise ListError("results hold the same item twice")
    if not all(isinstance(r.score, Real) and not isinstance(r.score, bool) and math.isfinite(r.score) for r in results):
        raise ListError("a result's score is not a finite number")
    cat, known = request.catalog, {r.item_id for r in before.results if isinstance(r, Recommendation)}
    new = [i for i in ids if i not in known]  # the runtime's own results came from a checked order
    if new and not all(row is not None and cat.is_active(row) for row in cat.index.get_many(new)):
        raise ListError("results hold an item the catalog does not have (or removed)")


def _ints(value) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu"


def _kind(value) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return type(value).__name__
