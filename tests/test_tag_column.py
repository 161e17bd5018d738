"""Tags stored as integer codes (bundle format 5): every row reads back as the text of format 4 said,
the tag profile counts and orders tags as counting the text did, a scan for tags finds the rows the
text scan finds, older bundles still open, and a damaged tag section is refused on open."""

from __future__ import annotations

import json
from collections import Counter
from itertools import chain
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.export.convert import convert_bundle
from edgerec.runtime import tag_column
from edgerec.runtime.bundle import Bundle, BundleWriter
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.tag_column import TagColumn, TagSpec, TextTags

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """The golden bundle as format 5 (tags as codes) and format 4 (tags as compressed text)."""
    root = tmp_path_factory.mktemp("tags")
    return {5: convert_bundle(GOLDEN, root / "v5"), 4: convert_bundle(GOLDEN, root / "v4", format_version=4)}


@pytest.fixture
def coded(versions, tmp_path):
    """A format 5 copy a test may damage."""
    return convert_bundle(versions[5], tmp_path / "copy")


def _edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _replace_array(bundle: Path, name: str, array: np.ndarray) -> None:
    np.save(bundle / name, array, allow_pickle=False)
    _edit_manifest(bundle, lambda m: m["files"][name].update(bytes=(bundle / name).stat().st_size))


def test_every_row_reads_back_as_its_text(versions):
    codes, text = (ItemCatalog(Bundle.open(versions[v])) for v in (5, 4))
    assert isinstance(codes.tag_column, TagColumn) and isinstance(text.tag_column, TextTags)
    assert Bundle.open(versions[5]).manifest.items.tags.vocab == tuple(sorted(set(chain.from_iterable(
        text.tags(r) for r in range(text.base_count)))))
    for row in range(codes.base_count):
        assert codes.tags(row) == text.tags(row) and codes.tag_column[row] == text.tag_column[row]
        assert codes.meta(row) == text.meta(row)


def test_tag_counts_keep_the_order_tags_are_first_seen_in(versions):
    """The tag profile breaks ties by first occurrence (spec §2): counted from codes it must list
    the tags in the order counting the text did, repeats and rows without tags included."""
    codes, text = (ItemCatalog(Bundle.open(versions[v])) for v in (5, 4))
    rng = np.random.default_rng(1)
    for size in (0, 1, 3, 30, 50):
        rows = rng.integers(0, codes.base_count, size).tolist() + [0, 0]
        got, wanted = codes.tag_counts(rows), Counter(chain.from_iterable(text.tags(r) for r in rows))
        assert list(got.items()) == list(wanted.items())
        assert list(got.most_common()) == list(wanted.most_common())


def test_a_tag_scan_finds_the_rows_the_text_scan_finds(versions, monkeypatch):
    codes, text = (ItemCatalog(Bundle.open(versions[v])) for v in (5, 4))
    vocab = Bundle.open(versions[5]).manifest.items.tags.vocab
    for scan_rows in (tag_column.SCAN_ROWS, 5, 1):  # one block, and blocks that split rows' codes apart
        monkeypatch.setattr(tag_column, "SCAN_ROWS", scan_rows)
        for tags in ([vocab[0]], [vocab[-1], vocab[len(vocab) // 2]], ["no-such-tag"], [], [vocab[1], ""]):
            found = codes.tag_column.rows_with(tags)
            assert found.tolist() == text.tag_column.rows_with(tags).tolist()
            assert found.tolist() == [bool(set(text.tags(r)) & set(tags)) for r in range(text.base_count)]


def test_the_writer_stores_codes_in_the_narrowest_type(tmp_path):
    writer = BundleWriter(tmp_path / "b", "x")
    few = TagSpec.write(writer, ["a|b", "", "b||c|b"], stem="items/few")
    assert few.vocab == ("a", "b", "c")
    assert np.load(writer.file_path(few.codes)).tolist() == [0, 1, 1, 2, 1]
    assert np.load(writer.file_path(few.offsets)).tolist() == [0, 2, 2, 5]
    many = TagSpec.write(writer, [f"t{i}" for i in range(300)], stem="items/many")
    assert np.load(writer.file_path(many.codes)).dtype == np.uint16
    assert np.load(writer.file_path(few.codes)).dtype == np.uint8


def test_older_formats_still_open_and_keep_their_text(versions, tmp_path):
    for version in (4, 3, 2):
        old = convert_bundle(versions[5], tmp_path / f"v{version}", format_version=version)
        bundle = Bundle.open(old)
        assert bundle.manifest.format_version == version and bundle.manifest.items.tags is None
        assert "tags" in bundle.manifest.items.strings
        assert ItemCatalog(bundle).tag_column.all() == ItemCatalog(Bundle.open(versions[5])).tag_column.all()


@pytest.mark.parametrize("damage, message", [
    (lambda b, t: _replace_array(b, t.codes, np.r_[np.load(b / t.codes)[:-1], len(t.vocab)].astype(np.uint8)),
     "code outside the vocabulary"),
    (lambda b, t: _replace_array(b, t.codes, np.load(b / t.codes).astype(np.int16)), "tag codes"),
    (lambda b, t: _replace_array(b, t.offsets, np.load(b / t.offsets)[::-1].copy()), "rising from 0"),
    (lambda b, t: _replace_array(b, t.offsets, np.load(b / t.offsets)[:-1].copy()), "rising from 0"),
    (lambda b, t: _replace_array(b, t.codes, np.load(b / t.codes)[:-1].copy()), "rising from 0"),
    (lambda b, t: _edit_manifest(b, lambda m: m["items"]["tags"]["vocab"].__setitem__(1, t.vocab[0])), "distinct"),
    (lambda b, t: _edit_manifest(b, lambda m: m["items"]["tags"]["vocab"].__setitem__(0, "a|b")), "distinct"),
    (lambda b, t: _edit_manifest(b, lambda m: m.update(format_version=4)), "as text"),
    (lambda b, t: _edit_manifest(b, lambda m: m["items"].pop("tags")), "as codes"),
])
def test_a_damaged_tag_section_is_refused_on_open(coded, damage, message):
    damage(coded, Bundle.open(coded).manifest.items.tags)
    with pytest.raises(BundleError, match=message):
        Bundle.open(coded, verify=False)


def test_a_format_5_bundle_with_text_tags_too_is_refused(coded, versions):
    """Tags in two places could disagree: format 5 keeps them as codes only."""
    text = Bundle.open(versions[4]).manifest.items.strings["tags"]
    for name in text.files():
        (coded / name).write_bytes((versions[4] / name).read_bytes())

    def add_text(m):
        m["items"]["strings"]["tags"] = text.to_manifest()
        m["files"].update({name: Bundle.open(versions[4]).manifest.files[name] for name in text.files()})

    _edit_manifest(coded, add_text)
    with pytest.raises(BundleError, match="and nowhere else"):
        Bundle.open(coded, verify=False)


def test_inspect_counts_the_tag_codes_as_the_tags_section(versions):
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.device_tests.footprint import sections

    bundle = Bundle.open(versions[5])
    parts, tags = sections(bundle), bundle.manifest.items.tags
    assert parts["tags"] == sum(bundle.manifest.files[f]["bytes"] for f in tags.files()) > 0
    assert sum(parts.values()) == bundle.size_bytes()  # every byte in one section, the vocabulary in the manifest's
    result = CliRunner().invoke(cli, ["inspect", str(versions[5])], terminal_width=200)
    assert result.exit_code == 0 and "tag codes" in result.output and f"{len(tags.vocab)} tags" in result.output
