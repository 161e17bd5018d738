"""The content encoder on the device: text -> content vector -> item vector, and zero-shot labels.

Tokenization uses the `tokenizers` library with the bundle's tokenizer.json
(a small optional extra; no transformers on the device). The content vector
is mapped into the recommender's item space by the bundle's projection, so a
new item is recommendable from its metadata alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import checks
from edgerec.runtime.backends import Backend, open_model
from edgerec.runtime.bundle import Bundle, ModelEntry
from edgerec.runtime.checks import shown
from edgerec.runtime.models import model_bytes
from edgerec.runtime.summary import extractive_summary, sentences

PAD_TOKENS = ("[PAD]", "<pad>", "<PAD>")  # WordPiece (BERT, MiniLM) and SentencePiece (XLM-R, multilingual)
PROBE_TEXT = "a probe text \u2603 \U0001f9ea \u2fff"  # symbols few vocabularies hold: they need the unknown token


def padding(tokenizer) -> tuple[int, str]:
    """The tokenizer's own padding token and id: [PAD] = 0 in English BERT vocabularies, <pad> = 1 in
    the XLM-R vocabulary of multilingual sentence encoders."""
    for token in PAD_TOKENS:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id), token
    raise ConfigError(f"the tokenizer has no padding token (one of {', '.join(PAD_TOKENS)}); "
                      "use a sentence-transformers model folder")


def metadata_text(meta: dict) -> str:
    """The same text the host's content encoder was trained on: title, description, tags. A None
    (an app's JSON null) is no text, not the word 'None'."""
    parts = [str(meta[key]) for key in ("title", "description") if meta.get(key) is not None]
    tags = list(meta.get("tags") or [])
    if tags:
        parts.append("Tags: " + ", ".join(tags) + ".")
    return " ".join(p for p in parts if p)


def text_to_tag(catalog, text: str | None, item_id: str | None) -> tuple[str, str]:
    """(the text the labels read, the prose a summary is made of) of a text, or of a catalog item:
    its metadata text, and its description (its title when it has none)."""
    if text is not None and item_id is not None:
        raise ConfigError("tag() takes a text or an item_id, not both")
    prose = text
    if text is None:
        if item_id is None:
            raise ConfigError("tag() needs a text or an item_id")
        meta = catalog.meta(catalog.row(item_id))
        text = metadata_text(meta)
        prose = str(meta.get("description") or meta.get("title") or "")
    if not checks.text(text, "the text to tag", 1_000_000).strip():  # labels of nothing: the encoder's bias
        raise ConfigError("there is no text to tag (empty, or an item without title, description or tags)")
    return text, prose


def unknown_id(tokenizer) -> int | None:
    """The id of the tokenizer model's unknown token, from the tokenizer's own JSON (spec §7b): `model.unk_id`
    (Unigram: SentencePiece, XLM-R) or the id of `model.unk_token` (WordPiece, BPE, WordLevel); None if it has
    none. The Python object of a Unigram model has no `unk_token`: <unk> was read as a word."""
    held = getattr(tokenizer, "model", None)
    if hasattr(held, "unk_token"):  # WordPiece, BPE, WordLevel: the JSON's unk_token, without parsing the vocabulary
        unk = held.unk_token
    else:
        to_str = getattr(tokenizer, "to_str", None)
        model = json.loads(to_str()).get("model") if to_str else None  # a stand-in tokenizer of a test has no JSON
        if not isinstance(model, dict):
            return None
        if model.get("type") == "Unigram":
            unk = model.get("unk_id")
            return unk if isinstance(unk, int) and not isinstance(unk, bool) else None
        unk = model.get("unk_token")
    found = tokenizer.token_to_id(unk) if isinstance(unk, str) and unk else None
    return None if found is None else int(found)


_ASK = object()  # reads_words(): the unknown id not given, read from the tokenizer


def reads_words(tokenizer, text: str, unknown=_ASK) -> bool:
    """Whether a tokenizer reads a word of `text` (spec §7b): spaces, zero-width marks or emoji alone are [CLS]
    [UNK] [SEP] to it, and every such text got one vector (new items on one point) and the same confident labels.
    `unknown`: unknown_id(tokenizer), when the caller has it (reading it parses the tokenizer's JSON)."""
    unknown = unknown_id(tokenizer) if unknown is _ASK else unknown
    return has_word(tokenizer.encode(text), unknown)


def has_word(encoding, unknown) -> bool:
    """A token neither special nor unknown, nor only SentencePiece's word mark and spaces (XLM-R reads an emoji
    as ▁ then <unk>: the mark alone gave every such text one vector)."""
    return any(not special and i != unknown and token.replace("\u2581", "").strip() != ""
               for i, token, special in zip(encoding.ids, encoding.tokens, encoding.special_tokens_mask))


def check_labels(names: list[str], vectors: np.ndarray, sets: dict[str, list[str]], width: int) -> None:
    """BundleError for labels that do not fit together (spec §7b): one vector row per name, of the content
    width, and sets of names. A hand-edited manifest with one name too few crashed `tag` with an IndexError."""
    problem, known = None, set(names)
    if vectors.ndim != 2 or vectors.shape != (len(names), width):
        problem = (f"labels.vectors has shape {vectors.shape}, not one row of {width} numbers (the projection's "
                   f"content width) for each of the {len(names):,} labels.names")
    elif empty := [kind for kind, members in sets.items() if not members]:
        problem = f"the label set {empty[0]!r} is empty"
    elif stray := [(kind, n) for kind, members in sets.items() for n in members if n not in known]:
        problem = f"the label set {stray[0][0]!r} holds {stray[0][1]!r}, which is not one of labels.names"
    if problem:
        raise BundleError(f"the bundle's content encoder labels do not fit together: {problem}; export the bundle "
                          "again (edgerec export --content) or fix its manifest")


def read_tokenizer(tokenizer_class, bundle, name: str):
    """The bundle's tokenizer file read by the tokenizers library; a file it cannot read is a BundleError
    (the library raises a bare Exception, and `tag` showed its traceback)."""
    try:
        return tokenizer_class.from_file(str(bundle.path(name)))
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - tokenizers' errors are plain Exceptions
        raise BundleError(f"the bundle's content encoder tokenizer {name} is not a tokenizer.json the tokenizers "
                          f"library reads ({str(exc)[:200]}); export the bundle again (edgerec export --content)") from None


def text_length(tokenizer, entry: ModelEntry) -> int:
    """The tokens a text is read as (spec §7b): `max_tokens` (ONNX; 48 when absent) or `tokens` (TFLite, its
    fixed input length, required), more than the special tokens the post-processor adds. A TFLite entry without
    `tokens` fed 48 tokens to a 32-long input (a raw ValueError); max_tokens 1 was ignored, 2 read no word."""
    key = "tokens" if entry.format == "tflite" else "max_tokens"
    value = entry.extra.get(key, None if entry.format == "tflite" else 48)
    specials = int(getattr(tokenizer, "num_special_tokens_to_add", lambda is_pair: 0)(False))
    if isinstance(value, bool) or not isinstance(value, int) or value <= specials:
        got = f"names no {key}" if value is None else f"reads texts of {key} {shown(value)}"
        raise BundleError(f"the bundle's {entry.format} content encoder {got}; it needs a whole number of tokens above "
                          f"the {specials} special token(s) its tokenizer adds (spec §7b; a TFLite file's `tokens` is its "
                          "input length); export the bundle again (edgerec export --content)")
    return value


def check_fixed_length(backend, tokens: int, entry: ModelEntry) -> None:
    """A TFLite file's two inputs take (1, `tokens`) (spec §7b)."""
    shapes = [backend.input_shape(i) for i in range(len(getattr(backend, "inputs", ())))]
    if len(shapes) < 2 or any(shape != (1, tokens) for shape in shapes[:2]):
        raise BundleError(f"the bundle's content encoder {entry.file} takes inputs of shape "
                          f"{', '.join(map(str, shapes)) or 'none'}, but its manifest entry says tokens {tokens}: the "
                          "two inputs must be (1, tokens) (spec §7b); export the bundle again (edgerec export --content)")


def check_projection(projection: np.ndarray, name: str, dim: int | None) -> None:
    """A float (C + 1, dim) projection (spec §7b): C content dimensions, then the bias row. Any other shape
    failed later inside numpy, at the first tag() or add_items()."""
    width = "dim" if dim is None else str(dim)
    if projection.ndim != 2 or projection.shape[0] < 2 or projection.dtype.kind != "f" \
            or (dim is not None and projection.shape[1] != dim):
        raise BundleError(f"the bundle's content encoder projection {name} has shape {projection.shape} and dtype "
                          f"{projection.dtype}; it must be float (C + 1, {width}): C content dimensions, then a bias row "
                          "(spec §7b); export the bundle again (edgerec export --content)")


class ContentEncoder:
    def __init__(self, bundle: Bundle, entry: ModelEntry, threads: int = 1):
        """BundleError for a manifest entry or bundle files that break spec §7b, found here: when the encoder is
        first needed (the bundle itself still opens)."""
        self.entry = entry
        extra = entry.extra
        if missing := [key for key in ("tokenizer", "projection", "labels") if key not in extra]:  # the schema types them, not requires
            raise BundleError(f"the bundle's content encoder names no {', '.join(missing)} in its manifest entry's extra "
                              "(spec §7b); export the bundle again (edgerec export --content)")
        self.projection = np.asarray(bundle.array(extra["projection"]))
        dim = getattr(getattr(bundle, "manifest", None), "dim", None)  # a test's stand-in bundle has no manifest
        check_projection(self.projection, extra["projection"], dim)
        labels = extra["labels"]
        self.label_names = list(labels["names"])
        self.label_vectors = np.asarray(bundle.array(labels["vectors"]))
        self.label_sets = {k: list(v) for k, v in labels["sets"].items()}
        check_labels(self.label_names, self.label_vectors, self.label_sets, self.projection.shape[0] - 1)
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ConfigError("the bundle's content encoder needs the tokenizers package: pip install tokenizers") from None
        self.tokenizer = read_tokenizer(Tokenizer, bundle, extra["tokenizer"])
        fixed = text_length(self.tokenizer, entry)
        self.tokenizer.enable_truncation(max_length=fixed)
        try:
            pad_id, pad_token = padding(self.tokenizer)
        except ConfigError:
            raise BundleError(f"the bundle's content encoder tokenizer {extra['tokenizer']} has no padding token (one of "
                              f"{', '.join(PAD_TOKENS)}; spec §7b); export the bundle again (edgerec export --content) "
                              "from a sentence-transformers model folder") from None
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token,
                                      length=fixed if entry.format == "tflite" else None)
        # a file the library reads may still fail on the first word it does not know (a WordPiece vocabulary
        # without its [UNK]): tag() and add_items() raised the library's bare Exception
        self.unknown = unknown_id(self.tokenizer)
        self._encode([PROBE_TEXT])
        self.backend: Backend = open_model(model_bytes(bundle, entry.file), entry, threads)
        if entry.format == "tflite" and hasattr(self.backend, "input_shape"):
            check_fixed_length(self.backend, fixed, entry)

    def _encode(self, texts: list[str]) -> list:
        """The tokenizer's encodings of texts; the library's own failures (bare Exceptions) are a BundleError."""
        try:
            return self.tokenizer.encode_batch(texts)
        except Exception as exc:
            if type(exc) is not Exception:  # a TypeError is a bug here, not the bundle's
                raise
            reason = (str(exc).strip().splitlines() or ["no reason given"])[0][:200]
            raise BundleError(f"the bundle's content encoder tokenizer {self.entry.extra['tokenizer']} cannot encode "
                              f"text ({reason}; spec §7b): its vocabulary lacks a token its model needs, such as the "
                              "unknown token; export the bundle again (edgerec export --content)") from None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Content vectors (L2-normalised) of texts."""
        encoded = self._encode(_texts(texts))
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.int64)
        if self.entry.format == "tflite":
            out = np.concatenate([self.backend.run({"input_ids": ids[i:i + 1].astype(np.int32),
                                                    "attention_mask": mask[i:i + 1].astype(np.int32)})[0]
                                  for i in range(len(ids))])
        else:
            out = self.backend.run({"input_ids": ids, "attention_mask": mask})[0]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def reads_words(self, text: str) -> bool:
        return has_word(self._encode([text])[0], self.unknown)

    def item_vectors(self, content: np.ndarray) -> np.ndarray:
        """Content vectors -> vectors in the recommender's item space."""
        out = content @ self.projection[:-1] + self.projection[-1]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def labels(self, content: np.ndarray, k: int = 5) -> dict:
        """Zero-shot labels of one content vector: the best of each label set (genre, mood) and the top-k tags."""
        k = checks.integer(k, "k", 1, 10_000)  # a negative k sliced off the last tags instead
        sims = self.label_vectors @ content
        name_index = {n: i for i, n in enumerate(self.label_names)}
        out = {}
        for kind, names in self.label_sets.items():
            idx = [name_index[n] for n in names if n in name_index]
            if idx:
                best = idx[int(np.argmax(sims[idx]))]
                out[kind] = self.label_names[best]
        order = np.argsort(-sims, kind="stable")[:k]  # ties: the earlier name (spec §7b)
        out["tags"] = [(self.label_names[i], float(sims[i])) for i in order]
        return out

    def describe(self, text: str, k: int = 5, prose: str | None = None) -> dict:
        """labels() of `text`, and the extractive summary of `prose` (default: the text) that stands
        for the text as a whole (summary.py)."""
        if not self.reads_words(text):
            raise ConfigError("there is no word to tag in the text (only spaces, marks or symbols the encoder does "
                              "not know, such as emoji); pass a text with words")
        parts = sentences(text if prose is None else prose)
        vectors = self.embed([text, *parts])
        out = self.labels(vectors[0], k)
        out["summary"] = extractive_summary(parts, vectors[1:], vectors[0])
        return out


def _texts(texts) -> list[str]:
    """A list of strings; a lone string is refused (it would be embedded one character at a time)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise ConfigError(f"the texts to embed must be a list of strings, e.g. [text] (got {type(texts).__name__})")
    texts = list(texts)
    if not texts:
        raise ConfigError("there are no texts to embed; pass a list of one or more strings")
    for text in texts:
        if not isinstance(text, str):
            raise ConfigError(f"each text to embed must be a string (got {type(text).__name__})")
    return texts
