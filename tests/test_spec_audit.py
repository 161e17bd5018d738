"""An outside audit of the bundle contract (spec/), as the engineer of a second runtime would do it.

1. The schema and the runtime give one verdict: every golden manifest and every freshly exported or
   converted bundle's manifest validates against spec/manifest.schema.json (read with spec rule 3's
   JSON rules) and opens; a set of hostile manifests is refused by both, the runtime with a
   BundleError that names the field and the rule.
2. A small scorer written from spec/README.md alone (numpy, and onnxruntime for the user encoder; no
   edgerec import on its path) replays the golden steps its rules cover and returns the expected
   lists: cold start, short histories, the seen filter, histories longer than L, the engagement pull,
   the context priors, not_interested feedback, the language and popularity terms, ties, items added
   with a vector, and per-row scales (golden/rows). Its rules are numbered by the spec's sections.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import Bundle

jsonschema = pytest.importorskip("jsonschema")

SPEC = Path(__file__).resolve().parents[1] / "spec"
GOLDEN = SPEC / "golden"
SCHEMA = json.loads((SPEC / "manifest.schema.json").read_text())


# ------------------------------------------------------------------ 1. the schema against the runtime


def strict_validator():
    """jsonschema with rule 3's JSON rules: finite numbers, integers as integer literals, ECMA `$`."""
    base = jsonschema.Draft202012Validator
    base.check_schema(SCHEMA)

    def ecma(validator, pattern, value, _schema):
        if isinstance(value, str) and not re.search(pattern.replace("$", r"\Z"), value):
            yield jsonschema.ValidationError(f"{value!r} does not match {pattern!r}")

    types = base.TYPE_CHECKER.redefine_many({
        "number": lambda _, v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "integer": lambda _, v: isinstance(v, int) and not isinstance(v, bool)})
    return jsonschema.validators.extend(base, {"pattern": ecma}, type_checker=types)(SCHEMA)


VALIDATOR = strict_validator()


def schema_errors(manifest: dict) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(manifest)]


@pytest.fixture(scope="module")
def exported(tiny_bundle, tmp_path_factory) -> list[Path]:
    """A fresh export, its conversions to formats 2 to 5 and a per-row, an fp16 and an fp32 table."""
    from edgerec.export.convert import convert_bundle

    root = tmp_path_factory.mktemp("formats")
    out = [Path(tiny_bundle)] + [convert_bundle(tiny_bundle, root / f"v{v}", format_version=v) for v in (2, 3, 4, 5)]
    for dtype in ("int8-row", "fp16", "fp32"):
        out.append(_retabled(Path(tiny_bundle), root / dtype, dtype))
    return out


def _retabled(source: Path, out: Path, dtype: str) -> Path:
    """`source` with its item table stored again as `dtype` (checksums and space made to match)."""
    from edgerec.runtime.bundle import Manifest, embedding_space_id, sha256_file
    from edgerec.runtime.item_table import StoredTable

    shutil.copytree(source, out)
    manifest = json.loads((out / "manifest.json").read_text())
    emb = manifest["items"]["embeddings"]
    vectors = StoredTable.read(Bundle.open(source), emb).dequantize()
    table = StoredTable.quantize(vectors, dtype)
    np.save(out / emb["file"], table.values)
    if table.scales is not None:
        np.save(out / emb["scales"], table.scales)
        emb.update(dtype="int8", scale_axis=table.scale_axis)
    else:
        (out / emb["scales"]).unlink()
        manifest["files"].pop(emb["scales"])
        manifest["items"]["embeddings"] = emb = {"file": emb["file"], "dtype": str(table.values.dtype)}
    for name in (emb["file"], emb.get("scales")):
        if name:
            manifest["files"][name] = {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size}
    typed = Manifest.from_dict(manifest)
    manifest["embedding_space"] = embedding_space_id(typed.files, typed.models, typed.items)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def test_every_golden_manifest_follows_the_schema_and_opens():
    for name in json.loads((GOLDEN / "index.json").read_text())["bundles"]:
        manifest = json.loads((GOLDEN / name / "manifest.json").read_text())
        assert schema_errors(manifest) == [], name
        Bundle.open(GOLDEN / name)


def test_every_exported_and_converted_manifest_follows_the_schema_and_opens(exported):
    kinds = set()
    for root in exported:
        manifest = json.loads((root / "manifest.json").read_text())
        assert schema_errors(manifest) == [], root.name
        items = Bundle.open(root).manifest.items
        kinds.add((manifest["format_version"], items.embeddings.dtype, items.embeddings.scale_axis))
    assert {(6, "int8", "dim"), (6, "int8", "row"), (6, "float16", None), (6, "float32", None), (2, "int8", "dim"),
            (3, "int8", "dim"), (4, "int8", "dim"), (5, "int8", "dim")} <= kinds


def _entry(manifest: dict) -> str:
    return next(name for name in manifest["files"] if name.endswith("popularity.npy"))


HOSTILE = {  # name: (edit of the parsed manifest, the start of the runtime's refusal)
    "a count as text": (lambda m: m["items"].update(count="56"), "manifest.json: items.count must be an integer"),
    "a negative count": (lambda m: m["items"].update(count=-1), "manifest.json: items.count must be an integer >= 0"),
    "a count of 56.0": (lambda m: m["items"].update(count=float(m["items"]["count"])),
                        "manifest.json: items.count must be an integer >= 0"),
    "a negative size": (lambda m: m["files"][_entry(m)].update(bytes=-5), "manifest.json: files["),
    "a size of 10.0": (lambda m: m["files"][_entry(m)].update(bytes=10.0), "manifest.json: files["),
    "a missing sha256": (lambda m: m["files"][_entry(m)].pop("sha256"), "manifest.json: files["),
    "an upper-case sha256": (lambda m: m["files"][_entry(m)].update(sha256=m["files"][_entry(m)]["sha256"].upper()),
                             "manifest.json: files["),
    "a path up with ..": (lambda m: m["files"].update({"../outside.npy": m["files"][_entry(m)]}),
                          "bundle path '../outside.npy' leaves the bundle directory"),
    "a path up inside": (lambda m: m["files"].update({"items/../../x.npy": m["files"][_entry(m)]}),
                         "bundle path 'items/../../x.npy' leaves the bundle directory"),
    "an absolute path": (lambda m: m["files"].update({"/etc/passwd": m["files"][_entry(m)]}),
                         "bundle path '/etc/passwd' leaves the bundle directory"),
    "the same file under a second name": (lambda m: m["files"].update({"items/./popularity.npy": m["files"][_entry(m)]}),
                                          "bundle path 'items/./popularity.npy' leaves the bundle directory or is not"),
    "a named file through a second name": (lambda m: (m["files"].update({"items/./popularity.npy": m["files"][_entry(m)]}),
                                                      m["items"]["numeric"].update(popularity="items/./popularity.npy")),
                                           "bundle path 'items/./popularity.npy' leaves"),
    "a trailing slash": (lambda m: m["files"].update({"items/": m["files"][_entry(m)]}), "bundle path 'items/' leaves"),
    "a backslash": (lambda m: m["files"].update({"items\\x.npy": m["files"][_entry(m)]}), "bundle path 'items\\\\x.npy'"),
    "format_version 7": (lambda m: m.update(format_version=7), "bundle format version 7 is not supported"),
    "format_version 0": (lambda m: m.update(format_version=0), "bundle format version 0 is not supported"),
    "format_version '5'": (lambda m: m.update(format_version="5"), "manifest.json: format_version must be an integer"),
    "format_version 5.0": (lambda m: m.update(format_version=5.0), "manifest.json: format_version must be an integer"),
    "another format": (lambda m: m.update(format="edgerec-bundle-2"), "manifest.json is not an edgerec bundle manifest"),
    "an unknown member": (lambda m: m.update(colour="blue"), "manifest.json: colour is not a known field here"),
    "a dim of 0": (lambda m: m.update(dim=0), "manifest.json: dim must be an integer between 1 and 65536"),
    "an unknown table dtype": (lambda m: m["items"]["embeddings"].update(dtype="int4"),
                               "manifest.json: items.embeddings.dtype must be one of"),
    "no files": (lambda m: m.update(files={}), "manifest.json: files must have at least 1 member"),
    "a history length of 0": (lambda m: m["defaults"].update(history_length=0),
                              "manifest.json: defaults.history_length must be an integer between 1"),
    "a wrong space id": (lambda m: m.update(embedding_space="XYZ"), "manifest.json: embedding_space must be a string"),
    "a short list of 1.5": (lambda m: m["defaults"].update(short_list=1.5), "manifest.json: defaults.short_list must"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_manifest_is_refused_by_the_schema_and_by_the_runtime(tmp_path, name):
    change, message = HOSTILE[name]
    root = Path(shutil.copytree(GOLDEN / "bundle", tmp_path / "bundle"))
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert schema_errors(manifest), f"the schema takes {name}"
    with pytest.raises(BundleError) as caught:
        Bundle.open(root)
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"a": NaN}', '{"a": 1e400}', '{"a": "\\ud800"}',
                                  '{"a": 99999999999999999999}'])
def test_what_no_schema_sees_is_refused_by_rule_1(tmp_path, text):
    """A member named twice, NaN, an overflowing number, an unpaired surrogate and an integer past 64 bits
    never reach a schema (a parser keeps one member, or reads a float or a code unit): spec rule 1 refuses
    them, and the runtime does, whatever section holds them."""
    root = Path(shutil.copytree(GOLDEN / "bundle", tmp_path / "bundle"))
    raw = (root / "manifest.json").read_text()
    (root / "manifest.json").write_text(raw.replace('"metrics": {', '"metrics": {"audit": ' + text + ", ", 1))
    with pytest.raises(BundleError, match="^manifest.json (is not valid JSON|holds a string with an unpaired)"):
        Bundle.open(root)


# ------------------------------------------------------------------ 2. a scorer from the spec text alone


def z(x) -> np.ndarray:
    """§4: standardise the finite values (population std, at least 1e-9); -inf stays; < 2 finite: 0."""
    x = np.asarray(x, np.float64)
    out = np.full(len(x), -np.inf)
    ok = np.isfinite(x)
    if ok.sum() < 2:
        out[ok] = 0.0
        return out
    out[ok] = (x[ok] - x[ok].mean()) / max(x[ok].std(), 1e-9)
    return out


class SpecBundle:
    """§1 rule 8: the item table and the columns the covered rules read."""

    def __init__(self, root: Path):
        import onnxruntime as ort

        self.m = m = json.loads((root / "manifest.json").read_text())
        items, self.dim, self.n = m["items"], m["dim"], m["items"]["count"]
        emb = items["embeddings"]
        self.q = np.load(root / emb["file"])
        self.scales = np.load(root / emb["scales"]) if "scales" in emb else None
        self.axis = emb.get("scale_axis", "row")
        if self.scales is None:
            self.v = self.q.astype(np.float32)
        else:  # int8 dequantization
            self.v = self.q.astype(np.float32) * (self.scales[None, :] if self.axis == "dim" else self.scales[:, None])
        blob, off = (root / items["strings"]["ids"]["blob"]).read_bytes(), np.load(root / items["strings"]["ids"]["offsets"])
        self.ids = [blob[a:b].decode() for a, b in zip(off[:-1].tolist(), off[1:].tolist())]
        self.col = {}
        for name, c in items["categorical"].items():
            codes = np.load(root / c["codes"]).astype(np.int64)
            self.col[name] = [c["vocab"][x] if x >= 0 else None for x in codes.tolist()]
        self.num = {name: np.load(root / f).astype(np.float64) for name, f in items["numeric"].items()}
        t = items["tags"]
        codes, toff = np.load(root / t["codes"]).astype(np.int64), np.load(root / t["offsets"]).astype(np.int64)
        self.tags = [[t["vocab"][c] for c in codes[toff[r]:toff[r + 1]]] for r in range(self.n)]
        self.inputs = (np.load(root / items["encoder_inputs"]) if "encoder_inputs" in items else np.arange(1, self.n + 1))
        model = next(x for x in m["models"] if x["role"] == "user_encoder" and x["format"] == "onnx")
        options = ort.SessionOptions()  # §3: the settings the file needs (extra.session_config)
        for key, value in model.get("extra", {}).get("session_config", {}).items():
            options.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(str(root / model["file"]), options, providers=["CPUExecutionProvider"])
        self.defaults, self.ranking = m.get("defaults", {}), m.get("ranking", {})


class SpecRuntime:
    """The rules of §2 to §5 the covered steps use: no filters, liked items, diversity, caps or replays."""

    COVERED = {"popularity", "context_weight", "cold_start_items", "engagement", "language_boost"}

    def __init__(self, bundle: SpecBundle):
        self.b, self.events, self.added = bundle, {}, []  # added: (id, unit vector)

    # the catalog: bundle rows, then added rows (§7)
    def ids(self) -> list[str]:
        return self.b.ids + [a for a, _ in self.added]

    def vectors(self) -> np.ndarray:
        return np.concatenate([self.b.v] + [v[None] for _, v in self.added]) if self.added else self.b.v

    def play(self, step: dict):
        op = step["op"]
        if op == "record":
            self.events.setdefault(step["user"], []).append((step["item"], step["event"]))
        elif op == "forget":
            self.events.pop(step["user"], None)
        elif op == "add_items":  # items with a vector only: L2-normalised, rows after the bundle's
            for item in step["items"]:
                v = np.asarray(item["vector"], np.float32)
                self.added.append((item["item_id"], (v / np.linalg.norm(v)).astype(np.float32)))
        elif op == "recommend":
            return self.recommend(step["user"], step.get("k", self.b.defaults.get("k", 10)), step["context"],
                                  step.get("policy", {}))
        return None

    def recommend(self, user: str, k: int, context: dict, policy: dict) -> list[tuple[str, float]]:
        b, ids, vec = self.b, self.ids(), self.vectors()
        n_all, row = len(ids), {i: r for r, i in enumerate(ids)}
        events = [(row[i], e) for i, e in self.events.get(user, [])[-2000:] if i in row]  # §2
        seq = list(dict.fromkeys(r for r, e in events if e in ("play", "finish", "like")))
        seen = {r for r, _ in events}
        newest = {kind: [r for r, e in events if e == kind][-n:] for kind, n in
                  (("more_like_this", 5), ("not_interested", 20), ("like", 5), ("finish", 5))}
        languages = Counter(b.col["language"][r] for r in seq[-50:] if r < b.n and b.col["language"][r])
        tag_profile = Counter(t for r in seq[-50:] if r < b.n for t in b.tags[r])
        now = context["now"]
        # §3 the user vector (ONNX: int64, the length max(1, min(history_length, n)))
        inputs = [int(b.inputs[r]) for r in seq if r < b.n]
        u = None
        if inputs:
            length = max(1, min(b.defaults.get("history_length", 50), len(inputs)))
            x = np.zeros((1, length), np.int64)
            kept = inputs[-length:]
            x[0, length - len(kept):] = kept
            u = np.asarray(b.session.run(None, {b.session.get_inputs()[0].name: x})[0][0], np.float32)
        e = policy.get("engagement", b.ranking.get("engagement", 0.0))
        if u is not None and e > 0:  # §3 engagement pull
            terms = [w * vec[newest[kind]].mean(0) for kind, w in (("like", e), ("finish", 0.5 * e)) if newest[kind]]
            if terms:
                p = np.sum(terms, axis=0)
                size = float(np.linalg.norm(u))
                pulled = u + size * p
                u = (pulled * size / np.linalg.norm(pulled)).astype(np.float32)
        assert not newest["more_like_this"], "liked items are outside this scorer's rules"
        cold, n, c3 = u is None, len(seq), policy.get("cold_start_items", 3)
        # §4 scores
        t = 3600 * math.floor(now / 3600)
        pop = np.r_[b.num["popularity"], np.zeros(len(self.added))]
        rel_ts = np.r_[b.num["release_ts"], np.zeros(len(self.added))]
        fresh = np.where((rel_ts > 0) & (rel_ts <= t), np.exp(-(t - rel_ts) / 86400 / 30), 0.0)
        zp = z(np.log1p(pop) * (1 + fresh)).astype(np.float32)
        w = np.float32(1) + (zp.max() - zp.min())
        if cold:
            genre_hit = np.array([b.col["genre"][r] in tag_profile if r < b.n else False for r in range(n_all)])
            lang_hit = np.array([b.col["language"][r] in languages if r < b.n else False for r in range(n_all)])
            score = zp + np.where(genre_hit, w, np.float32(0)) + np.where(lang_hit, w, np.float32(0))
        else:
            score = np.r_[self.scan(u), (vec[b.n:] @ u).astype(np.float32)].astype(np.float32)
            if n < c3:  # short history, no onboarding choices: chosen = z(prior)
                score = ((n / c3) * z(score) + (1 - n / c3) * zp.astype(np.float64)).astype(np.float32)
        score = np.where(np.isin(np.arange(n_all), list(seen)), -np.inf, score)
        # §4 short list: the best `want`, ties to the lowest row; a newcomer's creator cap may cut further down
        want = max(policy.get("short_list", b.defaults.get("short_list", 100)), k)
        ranked = [r for r in sorted(range(n_all), key=lambda r: (-score[r], r)) if np.isfinite(score[r])]
        candidates = ranked[:4 * want]
        newcomer = cold or n < c3
        cap = b.defaults.get("cold_max_per_creator", 3) if newcomer else 0
        creator = [b.col["creator"][r] if r < b.n else None for r in range(n_all)]
        end = len(candidates)
        if cap:
            counts, kept = Counter(), 0
            for position, r in enumerate(candidates):
                if creator[r] is None or counts[creator[r]] < cap:
                    counts[creator[r]] += 1
                    kept += 1
                    if kept == k:
                        end = position + 1
                        break
        sl = np.array(candidates[:max(want, end) if cap else want], np.int64)
        # §4 relevance and the context term
        rel = z(score[sl]) if newcomer else z((vec[sl] @ u).astype(np.float32))
        prior = b.ranking.get("context_prior")
        weight = policy.get("context_weight", prior.get("weight", 0) if prior else 0)
        if prior and weight > 0:
            part = ("night", "morning", "afternoon", "evening")[int((context["hour"] % 24) // 6)]
            lifts = [prior["day_part"].get(part), prior["device"].get(context.get("device"))]
            for j, r in enumerate(sl):
                mod = b.col["modality"][r] if r < b.n else None
                rel[j] += weight * sum(lift[i] for lift in lifts if lift for i, name in
                                       enumerate(prior["modalities"]) if name == mod)
        # §5 terms
        total = rel.copy()
        if newest["not_interested"]:
            sim = (vec[sl] @ vec[newest["not_interested"]].T).max(axis=1)
            total += -2.0 * policy.get("feedback_weight", 1.0) * np.clip(z(sim) - 1, 0, 3)
        top = [lang for lang, _ in languages.most_common(2)]
        total += policy.get("language_boost", 0.05) * np.array(
            [r < b.n and b.col["language"][r] in top for r in sl], np.float64)
        if policy.get("popularity"):
            total += policy["popularity"] * z(np.log1p(pop[sl]))
        order = self.spread(sl, total, k, cap, creator) if cap else sorted(range(len(sl)), key=lambda j: -total[j])[:k]
        return [(ids[sl[j]], float(total[j])) for j in order]

    def scan(self, u: np.ndarray) -> np.ndarray:
        """§4 Scan of the bundle rows: an int8 query on the int8 table (per dimension or per row)."""
        b = self.b
        if b.scales is None:
            return (b.v @ u).astype(np.float32)
        x = (u * b.scales).astype(np.float32) if b.axis == "dim" else u.astype(np.float32)
        step = float(np.abs(x).max()) / 127 or 1.0
        qq = np.clip(np.rint(x / np.float32(step)), -127, 127).astype(np.int64)
        out = np.float32(step) * (b.q.astype(np.int64) @ qq).astype(np.float32)
        return (out * b.scales).astype(np.float32) if b.axis == "row" else out

    @staticmethod
    def spread(sl, total, k, cap, creator) -> list[int]:
        """§5 newcomer spread without choices (nothing is chosen-matching): the first maximum among the
        items whose creator has not `cap` chosen ones yet, else among all."""
        chosen: list[int] = []
        left = list(range(len(sl)))
        while left and len(chosen) < k:
            counts = Counter(creator[sl[j]] for j in chosen)
            free = [j for j in left if creator[sl[j]] is None or counts[creator[sl[j]]] < cap]
            pick = max(free or left, key=lambda j: (total[j], -j))
            chosen.append(pick)
            left.remove(pick)
        return chosen


COVERED = {  # case: the recommend steps (by their place among the case's recommends) the scorer covers
    "newcomer": [0, 1, 2, 3], "short_history": [0, 1, 2], "history_longer_than_L": [0, 1], "seen_filter": [0, 1, 2],
    "forget": [0, 1], "boosts": [0, 4], "more_levers": [0, 1, 2, 4, 5, 6, 7, 8], "per_row_scales": [0, 1],
    "ties_and_repeats": [0, 1, 4, 5],
}


@pytest.fixture(scope="module")
def spec_bundles() -> dict[str, SpecBundle]:
    return {name: SpecBundle(GOLDEN / name) for name in ("bundle", "rows")}


@pytest.mark.parametrize("name", sorted(COVERED))
def test_the_text_alone_gives_the_golden_lists(spec_bundles, name):
    case = json.loads((GOLDEN / "cases" / f"{name}.json").read_text())
    runtime, place, checked = SpecRuntime(spec_bundles[case.get("bundle", "bundle")]), -1, 0
    for step in case["steps"]:
        if step["op"] != "recommend":
            runtime.play(step)
            continue
        place += 1
        if place not in COVERED[name]:
            continue
        assert set(step.get("policy", {})) <= SpecRuntime.COVERED and "filters" not in step
        got = runtime.play(step)
        expected = [(e["item_id"], e["score"]) for e in step["expected"]]
        assert [i for i, _ in got] == [i for i, _ in expected], f"{name} recommend #{place}"
        assert np.allclose([s for _, s in got], [s for _, s in expected], atol=case["tolerance"]["score"]), place
        checked += 1
    assert checked == len(COVERED[name])


def test_the_scorer_is_not_vacuous(spec_bundles):
    """Each rule it encodes moves a golden list: without the engagement pull, the context term, the
    per-row scales or the tie rule, a covered step no longer matches."""
    def fails(name, patch) -> bool:
        saved = {k: getattr(SpecRuntime, k) for k in patch}
        for key, value in patch.items():
            setattr(SpecRuntime, key, value)
        try:
            test_the_text_alone_gives_the_golden_lists(spec_bundles, name)
            return False
        except AssertionError:
            return True
        finally:
            for key, value in saved.items():
                setattr(SpecRuntime, key, value)

    original = SpecRuntime.scan
    assert fails("per_row_scales", {"scan": lambda self, u: (self.b.v @ u).astype(np.float32)
                                    if self.b.axis == "row" else original(self, u)})
    assert fails("ties_and_repeats", {"ids": lambda self: self.b.ids + [a for a, _ in self.added][::-1],
                                      "vectors": SpecRuntime.vectors})
    bundle = spec_bundles["bundle"]
    ranking = copy.deepcopy(bundle.ranking)
    try:
        bundle.ranking = {**ranking, "engagement": 0.0}
        assert fails("short_history", {})
        bundle.ranking = {k: v for k, v in ranking.items() if k != "context_prior"}
        assert fails("boosts", {})
    finally:
        bundle.ranking = ranking
