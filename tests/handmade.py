"""Hand-made bundles for tests: every number chosen by the test, so results can be worked out by hand;
and the small helpers the request-path tests share (a fixed clock, a watched history, result ids).

Importable from test files (pytest puts tests/ on sys.path, see pyproject.toml)."""

import numpy as np

from edgerec.runtime.bundle import BundleWriter, ModelEntry, TensorSpec
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.tag_column import TAGS_FORMAT, TagSpec


def item_columns(writer, n, *, popularity=None, release_ts=None, genre=None, language=None, creator=None,
                 modality=None, duration=None, tags=None):
    """The metadata sections (strings, categorical, numeric) of an n-item table, written through `writer`;
    columns not given get one plain value for every item."""
    def column(values, default):
        return list(values) if values is not None else [default] * n

    categorical = {}
    for name, values in (("modality", column(modality, "film")), ("language", column(language, "en")),
                         ("genre", column(genre, "drama")), ("creator", column(creator, "")),
                         ("provider", column(None, "")), ("series_id", column(None, ""))):
        vocab = sorted({v for v in values if v})
        codes = np.array([vocab.index(v) if v else -1 for v in values], np.int32)
        categorical[name] = {"codes": writer.add_array(f"items/{name}.npy", codes), "vocab": vocab}
    numeric = {
        "duration": writer.add_array("items/duration.npy", np.asarray(column(duration, 600.0), np.float32)),
        "release_ts": writer.add_array("items/release_ts.npy", np.asarray(column(release_ts, 0), np.int64)),
        "episode": writer.add_array("items/episode.npy", np.zeros(n, np.int32)),
        "popularity": writer.add_array("items/popularity.npy", np.asarray(column(popularity, 0.0), np.float32)),
    }
    strings = {"ids": writer.add_strings("items/ids", [f"i{r}" for r in range(n)]),
               "titles": writer.add_strings("items/titles", [f"Item {r}" for r in range(n)])}
    joined = ["|".join(t) for t in column(tags, ())]
    if writer.format_version >= TAGS_FORMAT:  # tags as codes
        return {"strings": strings, "categorical": categorical, "numeric": numeric,
                "tags": TagSpec.write(writer, joined).to_manifest()}
    strings["tags"] = writer.add_strings("items/tags", joined)
    return {"strings": strings, "categorical": categorical, "numeric": numeric}


def write_handmade_bundle(root, vectors, *, popularity=None, release_ts=None, genre=None, language=None,
                          creator=None, modality=None, duration=None, tags=None, table="fp32",
                          history_length=10, encoder=True, before_finish=None, format_version=None,
                          finish_extra=None, defaults=None):
    """A bundle whose every number is chosen by the test: item i has vector vectors[i], and the user
    encoder (ONNX) is the plain mean of the history's item vectors, so scores can be worked out by hand.
    before_finish(writer), when given, adds files of the test's own before the manifest is written;
    format_version: an older bundle format (2: wide column dtypes) instead of the current one;
    finish_extra: more keyword sections for writer.finish (ranking=, space=); defaults: more request
    defaults (replay=)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    vectors = np.asarray(vectors, np.float32)
    n, dim = vectors.shape
    writer = BundleWriter(root, "handmade", *([format_version] if format_version else []))
    if encoder:
        weights = numpy_helper.from_array(np.vstack([np.zeros((1, dim), np.float32), vectors]), "items")
        graph = helper.make_graph(
            [helper.make_node("Gather", ["items", "ids"], ["picked"], axis=0),
             helper.make_node("ReduceMean", ["picked"], ["user_vector"], axes=[1], keepdims=0)],
            "mean_of_history", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "history"])],
            [helper.make_tensor_value_info("user_vector", TensorProto.FLOAT, ["batch", dim])], [weights])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.save(model, str(writer.file_path("user_encoder.onnx")))
        writer.add_model(ModelEntry("user_encoder", "onnx", "user_encoder.onnx",
                                    [TensorSpec("ids", "int64", ["batch", "history"])],
                                    [TensorSpec("user_vector", "float32", ["batch", dim])]))

    columns = item_columns(writer, n, popularity=popularity, release_ts=release_ts, genre=genre,
                           language=language, creator=creator, modality=modality, duration=duration, tags=tags)
    items = {"count": n, "embeddings": StoredTable.quantize(vectors, table).manifest_entry(writer), **columns}
    if before_finish is not None:
        before_finish(writer)
    writer.finish(dim=dim, items=items, defaults={"k": 10, "history_length": history_length, "diversity": 0.0,
                                                  "short_list": 100, **(defaults or {})},
                  metrics={}, budgets={}, reference={}, data_version={}, **(finish_extra or {}))
    return root


# ------------------------------------------------------------------ requests

NOW = {"now": 1_790_000_000.0}  # a request context with a fixed clock


def watch(rec, user, rows):
    """`user` finished the items at catalog `rows`, one second apart, shortly before NOW."""
    for i, row in enumerate(rows):
        rec.record(user, rec.catalog.item_id(int(row)), "finish", timestamp=NOW["now"] - 1_000 + i)


def ids(results):
    return [r.item_id for r in results]


def write_v1_history(db) -> None:
    """A history database as schema version 1 wrote it: one play, no context column, no v2 tables."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, profile TEXT NOT NULL, "
                     "item TEXT NOT NULL, event TEXT NOT NULL, value REAL, ts REAL NOT NULL)")
        conn.execute("INSERT INTO events (profile, item, event, value, ts) VALUES ('p', 'a', 'play', 1, 5)")


def foreign_database(path, table: str = "contacts") -> bytes:
    """Another application's SQLite file at `path` (one table, one row); returns its bytes."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as db, db:
        db.execute(f"CREATE TABLE {table} (name TEXT)")
        db.execute(f"INSERT INTO {table} VALUES ('x')")
    return path.read_bytes()


def recorded_back_then(store, profile, item, event, ts, **options) -> int:
    """Record an event at the moment it happened (the store's clock set to its time): a store refuses
    an event it would not keep, so an event past retention is one that has aged out since."""
    clock, store.clock = store.clock, (lambda: ts)
    try:
        return store.record(profile, item, event, ts=ts, **options)
    finally:
        store.clock = clock
