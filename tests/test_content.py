"""Content models with the real packaged MiniLM: teacher, ONNX export, student, bundle, tagging, audio."""

import wave

import numpy as np
import pytest
import torch

from edgerec.compress.content_distill import (
    ContentDistillConfig,
    distill_content,
    embed,
    save_student,
)
from edgerec.data.store import load_dataset
from edgerec.errors import ExportError
from edgerec.export.bundle_builder import ExportConfig, export_bundle
from edgerec.export.content import fit_projection, project, projection_items
from edgerec.models.content import ContentTeacher, item_texts, load_tokenizer, tokenize
from edgerec.runtime import Recommender


@pytest.fixture(scope="module")
def teacher():
    return ContentTeacher()


@pytest.fixture(scope="module")
def student_dir(tiny_bundle, teacher, tmp_path_factory):
    catalog = load_dataset(tiny_bundle.parent / "data").catalog
    texts = item_texts(catalog)
    train, held = texts[:400], texts[900:1000]
    tokenizer = load_tokenizer(teacher.dir, 48)
    student, info = distill_content(tokenizer, train, teacher.encode(train), held, teacher.encode(held),
                                    ContentDistillConfig(epochs=12))
    out = tmp_path_factory.mktemp("content") / "student"
    save_student(out, student, teacher.dir, info)
    return out, info


def test_teacher_is_the_real_minilm_offline(teacher):
    v = teacher.encode(["a tense crime thriller series about detectives",
                        "a dark crime drama about a detective and a cold case",
                        "an upbeat pop track about summer love"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2  # it reads meaning


def test_teacher_onnx_export_and_int8_stay_close(teacher, tmp_path):
    from edgerec.compress.quantize import quantize_onnx
    from edgerec.export.content import export_teacher_onnx, run_content_file
    from edgerec.runtime.backends import open_backend

    texts = ["a melancholic folk song about the countryside", "space travel and robots in an epic sci-fi film",
             "a cooking short about street food", "history podcast on ancient rome"]
    expected = teacher.encode(texts)
    fp32 = export_teacher_onnx(teacher.dir, tmp_path / "minilm")
    int8 = quantize_onnx(fp32, tmp_path / "minilm-int8.onnx", "int8-dynamic")
    tokenizer = load_tokenizer(teacher.dir, 128)
    for path, floor in ((fp32, 0.9999), (int8, 0.97)):
        got = run_content_file(open_backend(path, "onnx"), "onnx", None, tokenizer, texts)
        got /= np.linalg.norm(got, axis=1, keepdims=True)
        assert (got * expected).sum(1).min() > floor
    assert int8.stat().st_size < fp32.stat().st_size / 3
    # students at `content distill`'s default widths stay under a quarter of MiniLM int8's bytes
    from edgerec.compress.content_vocab import CONTEXTUAL_WIDTH, STATIC_WIDTH
    from edgerec.export.content import export_student
    from edgerec.models.content import ContextualContentStudent, StaticContentStudent

    vocab = teacher.tokenizer.get_vocab_size()
    for made, width in ((StaticContentStudent, STATIC_WIDTH), (ContextualContentStudent, CONTEXTUAL_WIDTH)):
        path, _ = export_student(made(vocab, width, teacher.dim).eval(), "onnx", "int8",
                                 tmp_path / f"{made.__name__}-int8.onnx", tmp_path)
        assert width >= 128 and path.stat().st_size < int8.stat().st_size / 4, (made.__name__, width)


def test_student_learns_the_teacher(student_dir):
    _, info = student_dir
    history = info["history"]
    assert history[-1]["cosine_mean"] > history[0]["cosine_mean"] + 0.1
    assert info["held_out_cosine_mean"] > 0.6  # tiny run; the full run's figures are in the report


def test_student_exports_to_both_formats_with_parity(student_dir, teacher, tmp_path):
    from edgerec.compress.content_distill import load_student
    from edgerec.export.content import TFLITE_TOKENS, export_student, run_content_file
    from edgerec.runtime.backends import open_backend

    student, _ = load_student(student_dir[0])
    texts = ["a relaxing ambient track for sleep", "a funny comedy podcast episode"]
    tokenizer = load_tokenizer(teacher.dir, 48)
    fixed = load_tokenizer(teacher.dir, TFLITE_TOKENS, pad_to=TFLITE_TOKENS)
    ids, mask = tokenize(tokenizer, texts)
    expected = embed(student, ids, mask)
    for fmt in ("onnx", "tflite"):
        path, config = export_student(student, fmt, "none", tmp_path / f"s.{fmt}", tmp_path)
        got = run_content_file(open_backend(path, fmt, config=config), fmt, fixed, tokenizer, texts)
        assert np.abs(got - expected).max() < 1e-4


def test_a_text_of_zero_rows_gets_the_same_vector_from_the_file_as_from_pytorch(tmp_path):
    """A vocabulary student has zero rows (tokens without a vector) and no bias: such a text pools to zero.
    The exporter folded `+ 1e-12` in the normalisation away, and the file gave NaN where PyTorch gives the
    shared direction."""
    from edgerec.export.content import export_student
    from edgerec.models.content import StaticContentStudent
    from edgerec.runtime.backends import open_backend

    torch.manual_seed(0)
    student = StaticContentStudent(50, 8, 16)
    with torch.no_grad():
        student.tokens.weight[10:20] = 0
        student.project.bias.zero_()
        student.offset.copy_(torch.randn(16) * 0.3)
    ids, mask = torch.tensor([[10, 11, 12, 0]]), torch.tensor([[1, 1, 1, 0]])
    expected = student.eval()(ids, mask).detach().numpy()
    assert np.isfinite(expected).all() and abs(np.linalg.norm(expected) - 1) < 1e-5
    for mode in ("none", "int8"):
        path, config = export_student(student, "onnx", mode, tmp_path / f"s.{mode}.onnx", tmp_path)
        got = open_backend(path, "onnx", config=config).run({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        assert np.abs(got[0] - expected).max() < 1e-5, mode


@pytest.fixture(scope="module")
def content_bundle(tiny_bundle, student_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cb") / "bundle"
    export_bundle(tiny_bundle.parent / "ckpt", tiny_bundle.parent / "data", out,
                  ExportConfig(evaluate=False, parity_users=100, min_top10_agreement=0.8), content=student_dir[0])
    return out


def test_bundle_carries_the_content_encoder(content_bundle):
    from edgerec.runtime import Bundle

    m = Bundle.open(content_bundle).manifest
    assert set(m.formats("content_encoder")) == {"onnx", "tflite"}
    entry = m.model("content_encoder", "onnx")
    assert entry.extra["tokenizer"] == "content/tokenizer.json" and entry.extra["projection_fit"]["cosine_mean"] > 0
    for fmt in ("onnx", "tflite"):  # int8 files against the PyTorch student, measured at export
        parity = m.model("content_encoder", fmt).extra["parity"]
        assert parity["texts"] == 256 and parity["cosine_min"] > 0.98 and parity["max_abs_diff"] > 0


def test_the_device_reads_as_many_tokens_as_the_student_on_a_catalog_of_short_titles(tiny_bundle, student_dir,
                                                                                       tmp_path, monkeypatch):
    """The bundle said `max_tokens` = the catalog's longest text: on a catalog of titles the device cut every new
    item's text to a title's length, and its tags (last in the text) changed nothing."""
    import edgerec.models.content as content_module

    titles_only = content_module.item_texts
    monkeypatch.setattr(content_module, "item_texts", lambda catalog: [t.split(".")[0][:12] for t in
                                                                        titles_only(catalog)])
    out = tmp_path / "bundle"
    export_bundle(tiny_bundle.parent / "ckpt", tiny_bundle.parent / "data", out,
                  ExportConfig(evaluate=False, parity_users=100, min_top10_agreement=0.8, formats=("onnx",)),
                  content=student_dir[0])
    rec = Recommender.open(out)
    assert rec.bundle.manifest.model("content_encoder", "onnx").extra["max_tokens"] == 48
    base = "Night Train. A slow album recorded live in a club in Paris, with saxophone and piano."
    a, b = rec.content.embed([base, base + " Tags: horror, haunted house, thriller."])
    assert float(a @ b) < 0.999  # the tags reach the encoder


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_new_item_from_metadata_only_and_zero_shot_tags(content_bundle, backend):
    rec = Recommender.open(content_bundle, backend=backend)
    cat = rec.catalog
    source = cat.meta(42)
    rec.add_items([{"item_id": "fresh", "title": source["title"] + " II", "description": "",
                    "tags": source["tags"], "genre": source["genre"]}])
    row = cat.row("fresh")
    assert cat.meta(row)["vector_source"] == "content encoder"
    vector = cat.vectors(np.array([row]))[0]
    sims = cat.vectors(np.arange(cat.base_count)) @ vector
    same_genre = cat.matches("genre", np.arange(cat.base_count), [source["genre"]])
    assert sims[same_genre].mean() > sims[~same_genre].mean()  # it lands among items of its kind
    labels = rec.tag(text="a dark and tense horror film about a haunted house")
    assert {"genre", "mood", "tags"} <= set(labels) and labels["tags"]
    assert rec.tag(item_id=cat.item_id(0))["genre"]


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_a_summary_is_the_texts_own_closest_sentences_within_its_room(content_bundle, backend):
    from edgerec.runtime.summary import SUMMARY_CHARS

    rec = Recommender.open(content_bundle, backend=backend)
    text = ("A dark and tense horror film about a haunted house. The family hears footsteps at night. "
            "Nobody believes the youngest daughter. The house was built on an old graveyard. "
            "Critics called the ending one of the most frightening in years. Tags: horror, dark.")
    summary = rec.tag(text=text)["summary"]
    assert 0 < len(summary) <= SUMMARY_CHARS and "Tags:" not in summary
    chosen = [s for s in text.split(". ") if s.rstrip(".") in summary]
    assert summary == " ".join(s if s.endswith(".") else s + "." for s in chosen)  # whole sentences, in order
    short = "A gentle comedy about two old friends."
    assert rec.tag(text=short)["summary"] == short  # a text shorter than the room is its own summary
    item = rec.catalog.meta(7)  # an item: from its description (its title when the bundle has none), never its tags
    assert item.get("tags") and rec.tag(item_id=rec.catalog.item_id(7))["summary"] == (item.get("description")
                                                                                       or item["title"])


def test_tagging_nothing_is_refused(content_bundle, tmp_path):
    """`edgerec content tag BUNDLE --text ""` printed genre film-noir, tags film-noir 0.65, children's
    0.64, ...: the encoder's bias, read as labels. An empty text or an item with no words is refused."""
    from edgerec.errors import ConfigError

    rec = Recommender.open(content_bundle, history=tmp_path / "h.db")
    for nothing in ("", "  \n\t"):
        with pytest.raises(ConfigError, match="no text to tag|the text to tag must not be empty"):
            rec.tag(text=nothing)
    with pytest.raises(ConfigError, match="the text to tag must be a string"):
        rec.tag(text=42)
    # an item whose metadata holds no words at all
    rec.add_items([{"item_id": "bare", "title": " ", "vector": rec.catalog.vectors(np.array([0]))[0].tolist()}])
    with pytest.raises(ConfigError, match="no text to tag"):
        rec.tag(item_id="bare")
    assert rec.tag(text="a dark and tense horror film")["tags"]


def test_texts_without_a_word_are_not_embedded_and_descriptions_are_checked(content_bundle, tmp_path):
    """Titles of spaces, a no-break or zero-width space all got one content vector (jazz, horror and comedy on one
    point); emoji-only texts got the same confident labels; a NUL or a lone surrogate in a description was
    accepted, then broke tag() or the tokenizer with a raw TypeError."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.errors import ConfigError

    rec = Recommender.open(content_bundle, history=tmp_path / "h.db")
    genres = [g for g in rec.catalog.categorical["genre"][1] if g][:3]
    rec.add_items([{"item_id": f"w{i}", "title": title, "genre": genre}
                   for i, (title, genre) in enumerate(zip(["   ", "\u00a0", "\u200b"], genres))])
    rows = [rec.catalog.row(f"w{i}") for i in range(3)]
    assert {rec.catalog.meta(r)["vector_source"] for r in rows} == {"related items (genre)"}
    vectors = rec.catalog.vectors(np.array(rows))
    assert float(vectors[0] @ vectors[1]) < 0.999
    for nothing in ("\U0001F480", "\U0001F3AC\U0001F37F", "\u200b"):
        with pytest.raises(ConfigError, match="there is no word to tag"):
            rec.tag(text=nothing)
    for description, error in (("A jazz album.\x00 Live.", "description holds a NUL"),
                               ("caf\udce9", "description holds a lone surrogate"),
                               (12345, "description must be a string")):
        with pytest.raises(ConfigError, match=f"item 'd': {error}"):
            rec.add_items([{"item_id": "d", "title": "Night Train", "description": description}])
    with pytest.raises(ConfigError, match="^item 'c': each of tags must not be empty"):
        rec.add_items([{"item_id": "c", "title": "x", "tags": [""]}])
    result = CliRunner().invoke(cli, ["content", "tag", str(content_bundle)])
    assert result.exit_code == 2 and "give --text or --item" in result.output


def _tone(path, freq, seconds=2.0, rate=16000, clicks_bpm=None):
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.3 * np.sin(2 * np.pi * freq * t)
    if clicks_bpm:
        period = int(rate * 60 / clicks_bpm)
        signal[::period] += 0.9
    data = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(data.tobytes())


def test_audio_features_from_raw_sound(tmp_path):
    from edgerec.models.audio import FEATURES, catalog_audio_features

    _tone(tmp_path / "low.wav", 220)
    _tone(tmp_path / "high.wav", 3000)
    _tone(tmp_path / "beat.wav", 440, seconds=6, clicks_bpm=120)
    matrix, found = catalog_audio_features(["low", "high", "beat", "silent"], tmp_path)
    assert matrix.shape == (4, FEATURES) and found == 3
    centroid = FEATURES - 8
    assert matrix[1, centroid] > matrix[0, centroid]  # a higher pitch moves the spectral centroid up
    assert abs(matrix[2, -1] * 200 - 120) < 15  # tempo of the clicks
    assert not matrix[3].any()


def test_item_tower_fuses_per_modality_vectors(tiny_bundle, tmp_path):
    from edgerec.data.split import leave_last_out
    from edgerec.models.checkpoint import load_model
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, train_model

    dataset = load_dataset(tiny_bundle.parent / "data")
    rng = np.random.default_rng(0)
    content = {"text": rng.normal(size=(dataset.n_items, 12)).astype(np.float32),
               "audio": rng.normal(size=(dataset.n_items, 5)).astype(np.float32)}
    cfg = ModelConfig(arch="two-tower", dim=16, layers=1, max_len=8, content={"text": 12, "audio": 5})
    result = train_model(dataset, leave_last_out(dataset), cfg, TrainConfig(epochs=1, eval_users=0),
                         out=tmp_path, content=content)
    model, _ = load_model(tmp_path)
    assert set(model.item_data.content) == {"text", "audio"}
    with torch.no_grad():
        assert torch.allclose(model.item_vectors()[:5], result.model.item_vectors()[:5], atol=1e-6)
        changed = model.items.content_text.clone()
        model.items.content_text[1:] = 0  # the text vectors feed the item vectors
        assert not torch.allclose(model.item_vectors()[1:5], result.model.item_vectors()[1:5])
        model.items.content_text.copy_(changed)


def test_content_study_measures_every_encoder(student_dir, tiny_bundle, tmp_path):
    """`edgerec study content`: MiniLM exported as it is stays on the teacher; the student is far smaller;
    every encoder is measured on every unseen text set and on zero-shot tagging."""
    import json

    from click.testing import CliRunner

    from edgerec.cli.main import cli

    out = tmp_path / "content.json"
    result = CliRunner().invoke(cli, ["study", "content", "--student", str(student_dir[0]), "--data",
                                      str(tiny_bundle.parent / "data"), "--unseen", "25", "--json", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    rows = {r["model"]: r for r in record["models"]}
    assert record["held_out_texts"] == 100 and len(rows) == 3  # the student's own: what it kept out
    other = CliRunner().invoke(cli, ["study", "content", "--student", str(student_dir[0]), "--data",
                                     str(tiny_bundle.parent / "data"), "--held-out", "30"])
    assert other.exit_code != 0 and "the student was distilled with --held-out 100" in other.output
    assert record["sets"]["real titles with unseen words"] == 25
    assert record["sets"]["real titles in other languages"] == 25
    assert record["sets"]["MovieLens titles never trained on"] == 25  # a second real catalog
    quality = {(r["set"], r["model"]): r for r in record["quality"]}
    assert len(quality) == 3 * len(record["sets"])
    assert quality[("held-out catalog texts", "MiniLM fp32 (onnx)")]["cosine_mean"] > 0.999  # the teacher
    assert quality[("held-out catalog texts", "MiniLM fp32 (onnx)")]["top10_neighbour_agreement"] > 0.95
    assert rows["MiniLM int8 per-channel (onnx)"]["bytes_vs_minilm_int8"] == 1.0
    assert rows["student int8-weights (onnx)"]["bytes"] < rows["MiniLM int8 per-channel (onnx)"]["bytes"]
    tagging = {r["model"]: r for r in record["tagging"]}
    assert set(tagging) == set(rows) | {"MiniLM (PyTorch, the teacher)", "no model: always the most common label"}
    onnx, torch_ = tagging["MiniLM fp32 (onnx)"], tagging["MiniLM (PyTorch, the teacher)"]
    assert abs(onnx["top1_accuracy"] - torch_["top1_accuracy"]) <= 1 / onnx["texts"]  # a near-tie may flip


def test_cold_start_study_places_held_out_items_on_the_device(student_dir, tiny_bundle, tmp_path):
    """`edgerec content coldstart` (= `edgerec study coldstart`): items unseen in training, added from
    metadata, per content student: one distilled on the whole catalog, one on the data `--prepare`
    wrote without the new items; MiniLM as the reference."""
    import json

    from click.testing import CliRunner

    from edgerec.cli.main import cli

    data, cold, out = str(tiny_bundle.parent / "data"), tmp_path / "cold", tmp_path / "cold.json"
    common = ["--data", data, "--out", str(cold), "--held-items", "40"]
    prepared = CliRunner().invoke(cli, ["study", "coldstart", *common, "--prepare"])
    assert prepared.exit_code == 0, prepared.output
    assert len(load_dataset(cold / "data").catalog) == 960  # the students' data: no new item in it
    distilled = CliRunner().invoke(cli, ["content", "distill", "--data", str(cold / "data"), "--out",
                                         str(tmp_path / "fresh"), "--no-vocabulary", "--train-items", "300",
                                         "--held-out", "50", "--epochs", "3"])
    assert distilled.exit_code == 0, distilled.output
    result = CliRunner().invoke(cli, ["content", "coldstart", *common, "--content", str(student_dir[0]),
                                      "--content", str(tmp_path / "fresh"), "--minilm", "--epochs", "1",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["held_items"] == 40 and record["catalog"] == 1000 and record["pairs"] > 0
    assert len(load_dataset(cold / "data").catalog) == 960  # trained without them
    students = record["students"]
    assert [s["distilled_on_new_items"] for s in students] == [None, False]  # the fixture's: no data recorded
    # the device placed the added items with each bundle's own content encoder (not related items alone)
    assert all(s["device_vs_host_cosine_min"] > 0.99 for s in students)
    rows = {(r["placement"], r["content encoder"]): r["HR@10"] for r in record["placements"]}
    names = [s["student"] for s in students]
    assert names[1] == "fresh (catalog tokens only)"
    for name in names:
        assert ("device default: content encoder + related items", name) in rows
        assert ("content encoder only", name) in rows
    minilm = "MiniLM on the host"
    assert rows[("content encoder only", minilm)] > rows[("random placement", "-")]
    assert all(r["HR@10 low"] <= r["HR@10"] <= r["HR@10 high"] for r in record["placements"])


def test_cold_start_hits_rank_new_items_among_old_ones_and_resample_items():
    from edgerec.studies.coldstart import _hits_at

    base = np.tile([[0.0, 1.0]], (12, 1))  # twelve old items, all scoring 0 for the users below
    new = np.array([[1.0, 0.0], [-1.0, 0.0]])  # new item 0 scores 1 (rank 0), item 1 scores -1 (rank 13)
    users = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    history = [np.array([1]), np.array([2]), np.array([3])]
    record = _hits_at(10, users, base, history, np.array([0, 1, 1]), new)
    assert record["HR@10"] == pytest.approx(1 / 3)
    assert record["HR@10 low"] == 0.0 and record["HR@10 high"] == 1.0  # all of item 0's pairs, or none
    base[3:] = [-2.0, 0.0]  # now only three old items outscore new item 1; the user saw one of them
    assert _hits_at(10, users, base, history, np.array([0, 1, 1]), new)["HR@10"] == 1.0
    assert _hits_at(2, users, base, history, np.array([0, 1, 1]), new)["HR@2"] == pytest.approx(1 / 3)
    unplaced = new.copy()
    unplaced[1] = np.nan  # a placement that could not place item 1: its pairs are misses, never hits
    record = _hits_at(10, users, base, history, np.array([0, 1, 1]), unplaced)
    assert record["HR@10"] == pytest.approx(1 / 3) and record["not placed"] == 1


def test_the_related_items_placement_leaves_an_item_it_cannot_place_unplaced(rec):
    """A held-out genre whose every item was removed stopped the whole cold-start study with a ConfigError."""
    from edgerec.studies.coldstart import _shared_placements

    metas = [{"title": "Nothing known", "genre": "no-such-genre"}, dict(rec.catalog.meta(0), title="Known")]
    placed = _shared_placements(rec, metas, np.random.default_rng(0))["related items only (no content model)"]
    assert np.isnan(placed[0]).all() and np.isfinite(placed[1]).all()


def test_the_best_epoch_is_kept_and_the_start_competes():
    import torch

    from edgerec.compress.content_distill import BestEpoch

    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    epochs = BestEpoch(model, {"score": 0.5}, lambda record: record["score"])
    seen = []
    for epoch, (weight, score) in enumerate([(2.0, 0.4), (3.0, 0.7), (4.0, 0.6)]):
        with torch.no_grad():
            model.weight.fill_(weight)
        epochs.add(epoch, torch.tensor(0.1), {"score": score}, lambda n, record: seen.append(n))
    assert epochs.restore().weight.flatten().tolist() == [3.0, 3.0] and epochs.best["epoch"] == 2
    assert [r["score"] for r in epochs.history] == [0.4, 0.7, 0.6] and seen == [1, 2, 3]
    worse = BestEpoch(model, {"score": 0.9}, lambda record: record["score"])
    with torch.no_grad():
        model.weight.fill_(5.0)
    worse.add(0, torch.tensor(0.1), {"score": 0.2}, None)
    assert worse.restore().weight.flatten().tolist() == [3.0, 3.0]  # training that only hurt is not kept


def test_the_projection_learns_from_the_head_of_the_catalog_not_its_long_tail():
    """Training leaves a rarely consumed item's row where no user looks; a projection fitted over
    that tail maps a new item's text there too. Fitted on the items holding 75% of the events, it
    recovers the map the consumed items follow."""
    rng = np.random.default_rng(0)
    counts = np.r_[100 + np.arange(100), np.ones(900), np.zeros(50)]  # 14,950 events in the head, 900 in the tail
    rows = projection_items(counts)
    assert rows.tolist() == list(range(27, 100))  # the 73 most consumed hold 11,899 of 15,850 events (75%)
    content = rng.normal(size=(len(counts), 16)).astype(np.float32)
    truth = rng.normal(size=(16, 8)).astype(np.float32)
    items = content @ truth
    items[100:] = -items[:100].mean(0)  # the tail: one place, away from where users look
    new = rng.normal(size=(200, 16)).astype(np.float32)
    expected = project(new, np.vstack([truth, np.zeros((1, 8), np.float32)]))

    def agreement(fit):
        return float((project(new, fit_projection(content[fit], items[fit])) * expected).sum(1).mean())

    assert agreement(rows) > 0.99 and agreement(np.flatnonzero(counts > 0)) < 0.9
    assert len(projection_items(np.r_[np.full(10, 5), np.zeros(3)])) == 10  # a small catalog: every consumed item
    assert projection_items(np.zeros(4)).size == 0
    for bad in (np.array([1.0, -1.0]), np.array([1.0, np.nan]), np.ones((2, 2))):
        with pytest.raises(ExportError):
            projection_items(bad)
    with pytest.raises(ExportError):
        projection_items(counts, share=0.0)


def test_a_students_data_folder_is_read_relative_to_the_student(tmp_path, small_data_dir):
    import shutil

    from edgerec.data.store import load_dataset
    from edgerec.studies.coldstart import _had_new_items

    shutil.copytree(small_data_dir, tmp_path / "run" / "data")
    known = load_dataset(small_data_dir).catalog.item_ids[0]
    config = {"info": {"data": "../data"}}
    student = tmp_path / "run" / "student"
    assert _had_new_items(student, config, [known]) is True
    assert _had_new_items(student, config, ["no such item"]) is False
    (tmp_path / "run").rename(tmp_path / "moved")
    assert _had_new_items(tmp_path / "moved" / "student", config, [known]) is True
    absolute = {"info": {"data": str(tmp_path / "moved" / "data")}}  # as students before this change hold it
    assert _had_new_items(tmp_path / "elsewhere", absolute, [known]) is True
    assert _had_new_items(student, config, [known]) is None  # moved away: unknown, not an error


def test_a_content_bundle_of_a_catalog_without_labels_is_refused_before_any_work(tiny_bundle, tmp_path):
    """No genre, mood or tag: the label vectors were an empty concatenation (a raw ValueError) after the whole
    user-encoder export, and a hidden half bundle stayed beside --out."""
    import csv
    import shutil

    from edgerec.errors import DataError

    data = tmp_path / "data"
    shutil.copytree(tiny_bundle.parent / "data", data)
    with open(data / "items.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["genre"] = row["mood"] = row["tags"] = ""
    with open(data / "items.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DataError, match="needs labels to tag with"):
        export_bundle(tiny_bundle.parent / "ckpt", data, tmp_path / "out", ExportConfig(evaluate=False),
                      content=tmp_path / "no-student-read")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
