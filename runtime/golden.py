"""Golden cases: event scripts played on a runtime, compared with the lists they must give.

The spec's cases (spec/golden) hold every runtime to the same behaviour; an
app may also replay them after a bundle update as a self-check. A case
(spec/golden/cases/*.json) is a list of steps, each one call of the runtime's
API: record, onboard, add_items, remove_items, forget, recommend, transfer, tag.
A recommend step carries the list the runtime must return: item ids in
order, each with its score (within the case's tolerance) and its reason
(kind, the history item behind it, matched tags); a tag step the labels the
content encoder gives a text or an item. Any runtime, in any
language, that passes every case applies the bundle as this one does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.policies import Filters, Policy
from edgerec.runtime.recommender import Recommender
from edgerec.runtime.transfer import Transfer

OPS = ("record", "onboard", "add_items", "remove_items", "forget", "recommend", "transfer", "tag")
LISTS = ("recommend", "transfer", "tag")  # the steps whose output a case pins down
SCORE_TOLERANCE = 1e-4
STEP_KEYS = {"record": ("user", "item", "event"), "onboard": ("user",), "add_items": ("items",),
             "remove_items": ("items",), "forget": ("user",), "recommend": ("user", "expected"),
             "transfer": ("user", "method", "expected"), "tag": ("expected",)}


@dataclass
class Case:
    name: str
    description: str
    steps: list[dict]
    tolerance: float = SCORE_TOLERANCE
    bundle: str = "bundle"  # the folder of spec/golden the case plays on
    engines: tuple[str, ...] | None = None  # None: every engine; else only these (the bundle has only their files)

    @classmethod
    def load(cls, path: str | Path) -> Case:
        """A case file, its shape checked first: a malformed one fails here, as a ConfigError naming the
        file and the step, not midway through play with a KeyError or a TypeError."""
        name = checks.file_name(checks.path(path, "a case file"))
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{name}: cannot read the case file ({e.strerror})") from None
        except ValueError as e:  # bad JSON or bad UTF-8
            raise ConfigError(f"{name}: not a JSON case file ({e})") from None
        if not (isinstance(raw, dict) and isinstance(raw.get("name"), str) and isinstance(raw.get("steps"), list)):
            raise ConfigError(f"{name}: a case is a JSON object with a 'name' (text) and 'steps' (a list)")
        for i, step in enumerate(raw["steps"]):
            _check_step(step, f"{name}: step {i}")
        tolerance = raw.get("tolerance", {})
        if not isinstance(tolerance, dict):
            raise ConfigError(f"{name}: tolerance must be an object such as {{\"score\": {SCORE_TOLERANCE}}}")
        description, engines = raw.get("description", ""), checks.names(raw.get("engines"), f"{name}: engines")
        if not isinstance(description, str):
            raise ConfigError(f"{name}: description must be a string (got {type(description).__name__})")
        return cls(raw["name"], description, raw["steps"], checks.number(tolerance.get("score", SCORE_TOLERANCE), f"{name}: tolerance.score", 0),
                   checks.text(raw.get("bundle", "bundle"), f"{name}: bundle"),
                   tuple(engines) if engines is not None else None)

    def to_dict(self) -> dict:
        where = {"bundle": self.bundle} if self.bundle != "bundle" else {}
        where.update({"engines": list(self.engines)} if self.engines is not None else {})
        return {"name": self.name, "description": self.description, **where,
                "tolerance": {"score": self.tolerance}, "steps": self.steps}

    def plays_on(self, engine: str) -> bool:
        return self.engines is None or engine in self.engines

    def expected(self, engine: str) -> list[list[dict]]:
        """The expected list of every recommend step (an engine-specific one where the case has it)."""
        return [step.get("expected_by_engine", {}).get(engine, step["expected"])
                for step in self.steps if step["op"] in LISTS]


def _check_step(step, where: str, expected: bool = True) -> None:
    if not isinstance(step, dict):
        raise ConfigError(f"{where} must be an object with an 'op' (got {type(step).__name__})")
    op = step.get("op")
    if op not in OPS:
        raise ConfigError(f"{where} has op {op!r}; use one of {OPS}")
    missing = [key for key in STEP_KEYS[op] if key not in step and (expected or key != "expected")]
    if missing:
        raise ConfigError(f"{where} ({op}) has no {', '.join(missing)}")
    if op == "tag" and ("text" in step) == ("item_id" in step):
        raise ConfigError(f"{where} (tag) needs a text or an item_id, one of them")
    shown = step.get("expected")
    if op == "tag" and expected and not (isinstance(shown, dict) and isinstance(shown.get("labels"), dict)
                                         and isinstance(shown.get("tags"), list)):
        raise ConfigError(f"{where} (tag): expected must be an object with 'labels' (an object) and 'tags' (a list)")
    for key, kind in (("filters", Filters), ("policy", Policy)):
        given = step.get(key, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{where}: {key} must be an object of {kind.__name__} fields")
        unknown = sorted(set(given) - {field.name for field in fields(kind)})
        if unknown:  # a field of a newer spec: played without it, the case would test something else
            raise ConfigError(f"{where}: unknown {kind.__name__} fields {unknown}; update edgerec")


def load_cases(folder: str | Path) -> list[Case]:
    """Every case file of a folder, by name; a folder without any is refused (a self-check of no cases
    would pass)."""
    paths = sorted(Path(checks.path(folder, "the cases folder")).glob("*.json"))
    if not paths:
        raise ConfigError(f"no golden cases (*.json) in {checks.file_name(Path(folder))}")
    return [Case.load(path) for path in paths]


def run_case(bundle: str | Path, case: Case, engine: str, kernel: str = "auto") -> list[list[dict]]:
    """Play a case's steps on a fresh runtime (history in memory); the observed list of each recommend."""
    for i, step in enumerate(case.steps):  # a Case made in code skipped load()'s checks: a TypeError midway
        _check_step(step, f"{case.name}: step {i}", expected=False)  # (what it returns is compared by the caller)
    outputs = []
    with Recommender.open(bundle, backend=engine, kernel=kernel) as rec:
        for step in case.steps:
            op = step["op"]
            if op == "record":
                rec.record(step["user"], step["item"], step["event"], value=step.get("value"),
                           timestamp=step.get("timestamp"))
            elif op == "onboard":
                rec.onboard(step["user"], genres=step.get("genres", ()), tags=step.get("tags", ()),
                            languages=step.get("languages", ()), items=step.get("items", ()))
            elif op == "add_items":
                rec.add_items(step["items"])
            elif op == "remove_items":
                rec.remove_items(step["items"])
            elif op == "forget":
                rec.forget(step["user"])
            elif op == "tag":  # spec §7b: the content encoder's labels
                outputs.append(labels_observed(rec.tag(text=step.get("text"), item_id=step.get("item_id"),
                                                       k=step.get("k", 5))))
            elif op == "transfer":  # spec §8, from the case's bundle to itself (its space's bridges are fit on it)
                results = Transfer(rec, rec, step["method"]).recommend(step["user"], k=step.get("k", 10))
                outputs.append([observed(r) for r in results])
            else:
                results = rec.recommend(step["user"], k=step.get("k"), context=step.get("context"),
                                        filters=Filters(**step["filters"]) if "filters" in step else None,
                                        policy=Policy(**step["policy"]) if "policy" in step else None)
                outputs.append([observed(r) for r in results])
    return outputs


def observed(result) -> dict:
    """What a case pins down of one recommendation."""
    reason = result.reason
    out = {"item_id": result.item_id, "score": round(float(result.score), 6), "reason": reason.kind,
           "reason_item": reason.item_id, "tags": list(reason.tags)}
    if "scorer_score" in result.meta:  # the interpretable scorer ran: its sum of contributions
        out["scorer_score"] = round(float(result.meta["scorer_score"]), 6)
    return out


def labels_observed(described: dict) -> dict:
    """What a case pins down of tag(): the best label of each set and the top tags with their
    similarities (the summary is informative, not part of the contract)."""
    return {"labels": {kind: name for kind, name in described.items() if kind not in ("tags", "summary")},
            "tags": [{"tag": name, "score": round(float(score), 6)} for name, score in described["tags"]]}


def label_differences(step: int, want: dict, have: dict, tolerance: float) -> list[str]:
    if want["labels"] != have["labels"]:
        return [f"tag #{step}: labels {have['labels']}, expected {want['labels']}"]
    want_tags, have_tags = [t["tag"] for t in want["tags"]], [t["tag"] for t in have["tags"]]
    if want_tags != have_tags:
        return [f"tag #{step}: tags {have_tags}, expected {want_tags}"]
    return [f"tag #{step} ({w['tag']}): score {h['score']}, expected {w['score']} +- {tolerance}"
            for w, h in zip(want["tags"], have["tags"])
            if not math.isclose(w["score"], h["score"], rel_tol=0.0, abs_tol=tolerance)]


def differences(expected: list, got: list, tolerance: float) -> list[str]:
    """Where `got` departs from `expected` (an empty list: the case passes)."""
    out = []
    if len(expected) != len(got):
        return [f"{len(got)} recommend steps ran, the case has {len(expected)}"]
    for step, (want, have) in enumerate(zip(expected, got)):
        if isinstance(want, dict) or isinstance(have, dict):  # a tag step's labels
            out += (label_differences(step, want, have, tolerance) if isinstance(want, dict) and isinstance(have, dict)
                    else [f"step #{step}: labels and a list compared (the case and the run disagree on its op)"])
            continue
        want_ids, have_ids = [w["item_id"] for w in want], [h["item_id"] for h in have]
        if want_ids != have_ids:
            out.append(f"recommend #{step}: items {have_ids}, expected {want_ids}")
            continue
        for rank, (w, h) in enumerate(zip(want, have)):
            if not math.isclose(w["score"], h["score"], rel_tol=0.0, abs_tol=tolerance):
                out.append(f"recommend #{step} rank {rank} ({w['item_id']}): score {h['score']}, "
                           f"expected {w['score']} +- {tolerance}")
            if "scorer_score" in w or "scorer_score" in h:
                mine, theirs = h.get("scorer_score"), w.get("scorer_score")
                if mine is None or theirs is None or not math.isclose(theirs, mine, rel_tol=0.0, abs_tol=tolerance):
                    out.append(f"recommend #{step} rank {rank} ({w['item_id']}): scorer_score {mine}, "
                               f"expected {theirs} +- {tolerance}")
            for key in ("reason", "reason_item", "tags"):
                if w[key] != h[key]:
                    out.append(f"recommend #{step} rank {rank} ({w['item_id']}): {key} {h[key]!r}, "
                               f"expected {w[key]!r}")
    return out
