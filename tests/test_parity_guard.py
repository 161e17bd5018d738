"""The parity gate: exact figures on small vectors, and a wrong export fed to the real exporter is refused."""

import math
import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgerec.errors import ExportError
from edgerec.export import bundle_builder
from edgerec.export.bundle_builder import ExportConfig, export_bundle
from edgerec.export.parity import check, compare_vectors, overlap, top_k_rows

USERS = np.array([[1.0, 0.0], [0.0, 1.0]])
ITEMS = np.array([[0.9, 0.0], [0.1, 0.8], [0.5, 0.5], [0.7, 0.2], [0.0, 1.0]])


def test_top_k_rows_best_first_with_exclusions():
    assert top_k_rows(USERS, ITEMS, 2).tolist() == [[0, 3], [4, 1]]
    assert top_k_rows(USERS, ITEMS, 1).tolist() == [[0], [4]]
    assert top_k_rows(USERS, ITEMS, 2, [np.array([0]), np.array([4, 1])]).tolist() == [[3, 2], [2, 3]]


def test_top_k_rows_on_a_catalog_smaller_than_k_lists_every_item_excluded_last():
    """A 5-item catalog and k=10 (a small imported data set): every item once, the excluded ones last, and
    compare_vectors still reports its top-10 figures (export used to stop on a raw numpy error)."""
    assert top_k_rows(USERS, ITEMS, 10, [np.array([0]), np.array([4])]).tolist() == [[3, 2, 1, 4, 0], [1, 2, 3, 0, 4]]
    figures = compare_vectors(USERS, USERS, ITEMS)
    assert figures["top10_agreement"] == 1.0 and figures["top10_identical_share"] == 1.0


def test_overlap_is_the_shared_share_of_the_first_list():
    assert overlap(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 9], [7, 8, 9]])).tolist() == [2 / 3, 0.0]
    assert overlap(np.zeros((1, 0), int), np.zeros((1, 0), int)).tolist() == [0.0]
    assert overlap(np.array([[3], [4]]), np.array([[3], [5]])).tolist() == [1.0, 0.0]  # top-1 lists


def test_compare_vectors_figures_by_hand():
    reference = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    produced = np.array([[1.0, 0.5], [0.0, -2.0], [0.0, 0.0]])
    out = compare_vectors(reference, produced)
    assert out["max_abs_diff"] == 4.0 and out["rows"] == 3
    cos = [1 / math.sqrt(1.25), -1.0, 0.0]  # a zero vector has cosine 0, not NaN
    assert out["cosine_mean"] == pytest.approx(sum(cos) / 3) and out["cosine_min"] == -1.0
    assert set(out) == {"max_abs_diff", "cosine_mean", "cosine_min", "rows"}
    short = np.array([[0.1, 0.0], [0.0, 0.02]])  # vectors shorter than 1: the cosine is still 1
    assert compare_vectors(short, short)["cosine_min"] == pytest.approx(1.0)


def test_compare_vectors_top_k_agreement():
    produced = np.array([[1.0, 0.0], [0.1, 1.0]])  # row 1 keeps items 4, 1
    out = compare_vectors(USERS, produced, ITEMS, k=2)
    assert out["top2_agreement"] == 1.0 and out["top2_identical_share"] == 1.0
    produced = np.array([[1.0, 0.0], [1.0, 0.1]])  # row 1 now 0, 3: nothing in common with 4, 1
    out = compare_vectors(USERS, produced, ITEMS, k=2)
    assert out["top2_agreement"] == 0.5 and out["top2_identical_share"] == 0.5
    produced = np.array([[1.0, 0.8], [0.0, 1.0]])  # row 0: items 0, 2 (0.9 each; 3 has 0.86) vs 0, 3
    out = compare_vectors(USERS, produced, ITEMS, exclude=[np.array([4]), np.array([4])], k=2)
    assert out["top2_agreement"] == pytest.approx(0.75) and out["top2_identical_share"] == 0.5


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_compare_vectors_refuses_non_finite_outputs(bad):
    produced = USERS.copy()
    produced[1, 0] = bad
    with pytest.raises(ExportError, match="^the exported model produced NaN or infinite outputs$"):
        compare_vectors(USERS, produced)


def test_check_applies_each_tolerance_at_its_boundary():
    figures = {"max_abs_diff": 0.25, "top10_agreement": 0.8}
    assert check(dict(figures), "x", max_abs_diff=0.25)["tolerance"] == {"max_abs_diff": 0.25,
                                                                         "min_top10_agreement": None}
    with pytest.raises(ExportError, match=r"enc: max \|diff\| to PyTorch is 2.50e-01, above the tolerance 2e-01"):
        check(dict(figures), "enc", max_abs_diff=0.2)
    assert check(dict(figures), "x", min_agreement=0.8)["tolerance"]["min_top10_agreement"] == 0.8
    with pytest.raises(ExportError, match="enc: top-10 agreement with PyTorch is 0.800, below the tolerance 0.81"):
        check(dict(figures), "enc", min_agreement=0.81)
    # no tolerance, no verdict; a figure the result lacks is not judged
    assert check({"max_abs_diff": 1e9, "top10_agreement": 0.0}, "x")["max_abs_diff"] == 1e9
    assert check({"max_abs_diff": 0.0}, "x", min_agreement=0.99)["tolerance"]["min_top10_agreement"] == 0.99
    with pytest.raises(ExportError, match="top-5 agreement"):
        check({"max_abs_diff": 0.0, "top5_agreement": 0.5}, "x", min_agreement=0.6, k=5)
    assert check({"max_abs_diff": 0.0, "top5_agreement": 0.5}, "x", min_agreement=0.6)["tolerance"] == {
        "max_abs_diff": None, "min_top10_agreement": 0.6}


# ------------------------------------------------------------------ the gate inside the real exporter


def _scramble(path, scale):
    """Rewrite an ONNX file with every float weight changed: scaled (scale != 0) or shuffled (scale == 0)."""
    model = onnx.load(str(path))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype != np.float32 or values.size < 8:
            continue
        changed = values * (1 + scale) if scale else rng.permutation(values.ravel()).reshape(values.shape)
        init.CopyFrom(numpy_helper.from_array(changed.astype(np.float32), init.name))
    onnx.save(model, str(path))


def _export(tiny_bundle, out, **cfg):
    root = tiny_bundle.parent
    return export_bundle(root / "ckpt", root / "data", out,
                         ExportConfig(formats=("onnx",), parity_users=60, evaluate=False, **cfg))


def test_the_same_export_unchanged_passes_the_gate(tiny_bundle):
    """The control for the two refusals below: this checkpoint's own bundle went through the gate."""
    from edgerec.runtime.bundle import Bundle

    entry = next(m for m in Bundle.open(tiny_bundle).manifest.models if m.format == "onnx")
    assert entry.parity["export"]["rows"] == 200 and "int8-weights" in entry.parity


def test_an_export_one_percent_off_is_refused(tiny_bundle, tmp_path, monkeypatch):
    real = bundle_builder.export_onnx

    def wrong_export(module, sample, axes, outputs, path, **kw):
        real(module, sample, axes, outputs, path, **kw)
        _scramble(path, 0.01)

    monkeypatch.setattr(bundle_builder, "export_onnx", wrong_export)
    with pytest.raises(ExportError, match=re.escape("onnx export of the user encoder: max |diff| to PyTorch")):
        _export(tiny_bundle, tmp_path / "off", quantize="none")
    assert not (tmp_path / "off" / "manifest.json").exists()  # nothing that looks like a bundle


def test_a_quantized_file_that_ranks_differently_is_refused(tiny_bundle, tmp_path, monkeypatch):
    real = bundle_builder.quantize_onnx

    def wrong_quantizer(src, dst, mode, calibration=None):
        out = real(src, dst, mode, calibration)
        _scramble(out, 0.0)
        return out

    monkeypatch.setattr(bundle_builder, "quantize_onnx", wrong_quantizer)
    with pytest.raises(ExportError, match="onnx int8 user encoder: top-10 agreement with PyTorch is"):
        _export(tiny_bundle, tmp_path / "scrambled", quantize="int8")
    assert not (tmp_path / "scrambled" / "manifest.json").exists()


@pytest.mark.parametrize("k", [1, 2, 10, 499, 500])
def test_top_k_rows_is_the_full_sort_cut_at_k(k):
    """Against a full sort on scores with no ties: every row's k best, best first, for k up to all items."""
    rng = np.random.default_rng(k)
    users, items = rng.normal(size=(30, 8)), rng.normal(size=(500, 8))  # enough to defeat a lucky partition
    expected = np.argsort(-(users @ items.T), axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(top_k_rows(users, items, k), expected)


@pytest.mark.parametrize("cells", [1, 500 * 3, 500 * 7 + 1])  # one user at a time, three, seven
def test_top_k_rows_ranks_a_few_users_at_a_time_with_the_same_lists(cells):
    """The scores are ranked `cells // items` users at a time (memory); each user's list, with its own
    exclusions (coarse scores: ties), is the one of ranking all users together."""
    rng = np.random.default_rng(cells)
    users, items = (np.round(rng.normal(size=(n, 4)), 1).astype(np.float32) for n in (23, 500))  # ties
    seen = [rng.choice(500, int(rng.integers(0, 40)), replace=False) for _ in range(len(users))]
    whole = top_k_rows(users, items, 10, seen, cells=10 ** 9)
    np.testing.assert_array_equal(top_k_rows(users, items, 10, seen, cells=cells), whole)
    assert not any(set(row) & set(s) for row, s in zip(whole.tolist(), seen))
