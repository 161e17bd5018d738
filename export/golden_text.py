"""The golden bundle `golden/text`: the golden items and model with a content encoder (spec §7b), so a second
runtime can check how it embeds an item's metadata and names its labels.

The encoder is a static content student (token table, masked mean, linear map, offset, L2 norms) with
seeded random weights over a WordPiece vocabulary of the golden catalog's own words, plus single
characters and their "##" continuations so that any Latin word still has pieces, written by the real
exporter (`export --content`) in ONNX and TFLite. Its cases pin the algorithm (tokenizing, pooling,
projection, labels), not how good the vectors are.
"""

from __future__ import annotations

import re
import shutil
import string
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgerec.runtime.golden import Case

TEXT = "text"  # the folder in spec/golden
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # BERT's order: [PAD] is 0, as students expect
STUDENT_DIM, STUDENT_OUT = 8, 16
STUDENT_SEED = 7


def write_tokenizer(texts: list[str], out: Path) -> int:
    """A BERT-style WordPiece tokenizer.json over the words of `texts` (lower-cased, accents stripped) plus
    every ASCII letter, digit and punctuation mark alone and as a "##" piece; returns its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    words = Counter(w for text in texts for w in re.findall(r"[a-z0-9]+", text.lower()))
    pieces = [c for c in string.ascii_lowercase + string.digits]
    vocab_list = [*SPECIAL, *string.punctuation, *pieces, *(f"##{c}" for c in pieces),
                  *sorted(w for w in words if len(w) > 1)]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True,
                                                      handle_chinese_chars=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.decoder = decoders.WordPiece()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    return len(vocab)


def build_text_bundle(out: Path) -> Path:
    """`out` (replaced): the golden model and items exported again with a seeded static content student."""
    import torch

    from edgerec.compress.content_distill import save_student
    from edgerec.data import write_synth
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.export.bundle_builder import export_bundle
    from edgerec.export.golden import EXPORT, MODEL, TRAIN, WORLD, inside, reproducible
    from edgerec.models.content import StaticContentStudent, item_texts
    from edgerec.models.train import train_model

    out = Path(out).resolve()
    with reproducible(), tempfile.TemporaryDirectory(prefix="edgerec-golden-text-") as scratch, \
            inside(Path(scratch)):
        write_synth(WORLD, "data")
        dataset = load_dataset("data")
        train_model(dataset, leave_last_out(dataset), MODEL, TRAIN, out="ckpt")
        size = write_tokenizer(item_texts(dataset.catalog), Path("tokenizer"))
        torch.manual_seed(STUDENT_SEED)
        student = StaticContentStudent(size, STUDENT_DIM, STUDENT_OUT)
        with torch.no_grad():  # token rows large against the map's bias, so texts point their own ways
            student.tokens.weight.normal_(0.0, 1.0)
            student.tokens.weight[0].zero_()
            student.project.bias.zero_()
            student.offset.copy_(torch.linspace(-0.1, 0.1, STUDENT_OUT))  # the shared direction, not zero
        save_student("student", student, Path("tokenizer"), {"golden": True})
        export_bundle("ckpt", "data", "bundle", replace(EXPORT, name="golden-text"), content="student")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree("bundle", out)
    return out


def text_case(world) -> Case:
    """Items that arrive with metadata only (their vectors from the content encoder: §7b, §7), listed
    under their own genre, and labels of texts (`tag` steps)."""
    from edgerec.runtime.golden import Case

    history = world.where(modality=world.most_common("modality")[0])[:4]
    added = [
        {"item_id": "text-1", "title": "Signal of the Island", "description": "A dark thriller about hackers.",
         "tags": ["thriller", "dark"], "genre": "golden-new"},
        {"item_id": "text-2", "title": "Quiet Rain", "description": "A dreamy jazz record for slow evenings.",
         "tags": ["jazz", "relaxing"], "genre": "golden-new"},
        {"item_id": "text-3", "title": "Zyxwv Qorb", "description": None, "tags": [], "genre": "golden-new"},
        {"item_id": "text-4", "title": "Café Olé: Ñandú", "description": "Épica aventura — viaje y comida por los ríos del sur.",
         "tags": ["travel"], "genre": "golden-new"},
        {"item_id": "text-5", "title": "東京の夜", "description": "夜の音楽", "tags": [], "genre": "golden-new",
         "creator": world.most_common("creator", 2)[1]},  # no word the vocabulary knows: the creator alone places it
        {"item_id": "text-6", "description": "A late show.", "genre": "golden-new"},  # untitled: the id is its title
        {"item_id": "text-7", "title": "Another one by them", "creator": world.most_common("creator")[0],
         "genre": "golden-new"},  # the content vector blended with the creator's (§7)
        {"item_id": "text-8", "title": "The next part", "series_id": world.most_common("series_id")[0],
         "episode": 99, "genre": "golden-new"},  # and with the series'
    ]
    steps = [*({"op": "record", "user": "t", "item": item, "event": "finish"} for item in history),
             {"op": "add_items", "items": added},
             {"op": "recommend", "user": "t", "k": 8, "filters": {"genres": ["golden-new"]}, "context": world.context()},
             {"op": "recommend", "user": "t", "k": 5, "context": world.context()},  # a fixed now: freshness
             {"op": "tag", "text": "A tense thriller film about amnesia and hackers. Tags: thriller, tense.", "k": 5},
             {"op": "tag", "text": "Un viaje relajante: música latina.", "k": 3},
             {"op": "tag", "item_id": "text-2", "k": 4}, {"op": "tag", "item_id": "text-6", "k": 2},
             {"op": "tag", "item_id": world.ids[0], "k": 3}]  # a bundle item: its title and tags
    return Case("content_encoder", "items added with metadata only take their vectors from the content encoder "
                "(spec §7b: text, tokens, pooled vector, projection) and are listed under their own genre; one whose text "
                "reads no word (§7b) is placed by its creator alone; tag steps pin the zero-shot labels of texts, of added items (an untitled one reads its id) and of a bundle item; items of a known creator or series blend the content vector with theirs", steps, bundle=TEXT)


__all__ = ["TEXT", "build_text_bundle", "text_case", "write_tokenizer"]
