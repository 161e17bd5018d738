"""Bundle updates (runtime/update.py) called directly: what is verified, the whole refusal messages,
what the log says, where a packed update is unpacked, and that no host path reaches a reason."""

import json
import logging
import shutil

import numpy as np
import pytest

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import pack as pack_module
from edgerec.runtime.bundle import Bundle, sha256_file
from edgerec.runtime.pack import pack
from edgerec.runtime.update import BundleUpdate, open_checked, open_update


def onnx(bundle):
    return "onnx"


def _copy(tiny_bundle, folder, name):
    target = folder / name
    shutil.copytree(tiny_bundle, target)
    return target


def _tampered(tiny_bundle, folder, name="tampered"):
    """A bundle whose model and references are intact but a listed file no longer matches its sha256."""
    bad = _copy(tiny_bundle, folder, name)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["files"]["model_card.json"]["sha256"] = "0" * 64
    (bad / "manifest.json").write_text(json.dumps(manifest))
    return bad


def _rewrite(bundle, change):
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return bundle


def _wrong_references(tiny_bundle, folder):
    bad = _copy(tiny_bundle, folder, "wrong-reference")
    name = "reference/user_vectors.npy"
    np.save(bad / name, -np.load(bad / name))
    return _rewrite(bad, lambda m: m["files"][name].update(sha256=sha256_file(bad / name)))


def test_open_checked_verifies_only_when_asked(tiny_bundle, tmp_path):
    bad = _tampered(tiny_bundle, tmp_path)
    with pytest.raises(BundleError, match="bundle file model_card.json fails its sha256 check"):
        open_checked(bad, True, onnx)
    bundle, backend = open_checked(bad, False, onnx)  # the encoder still reproduces its references
    assert backend == "onnx" and bundle.root == bad


def test_a_failing_reference_check_names_the_engine_its_figures_and_the_tolerance(tiny_bundle, tmp_path):
    bad = _wrong_references(tiny_bundle, tmp_path)
    tolerance = Bundle.open(bad).manifest.reference.get("tolerance", {"cosine_min": 0.98, "top_k_agreement": 0.8})
    with pytest.raises(BundleError) as refused:
        open_checked(bad, True, onnx)
    message = str(refused.value)
    head = "its user encoder does not reproduce the bundle's reference outputs on this device (onnx: cosine -1.000, top-k agreement "
    assert message.startswith(head) and message.endswith(f"; tolerance {tolerance})")
    assert float(message[len(head):].split(";")[0]) <= 1.0  # the agreement's figure, two decimals
    assert len(message[len(head):].split(";")[0]) == 4


def test_a_bundle_without_an_encoder_for_the_chosen_engine_or_references_is_refused(tiny_bundle, tmp_path):
    good = _copy(tiny_bundle, tmp_path, "good")
    tolerance = Bundle.open(good).manifest.reference.get("tolerance", {"cosine_min": 0.98, "top_k_agreement": 0.8})
    with pytest.raises(BundleError) as refused:  # only the chosen engine is checked, never every available one
        open_checked(good, True, lambda b: "coreml")
    assert str(refused.value) == ("its user encoder does not reproduce the bundle's reference outputs on this device "
                                  f"(no encoder checked; tolerance {tolerance})")
    bare = _rewrite(_copy(tiny_bundle, tmp_path, "bare"), lambda m: m.pop("reference"))
    with pytest.raises(BundleError) as refused:
        open_checked(bare, True, onnx)
    assert str(refused.value) == ("its user encoder does not reproduce the bundle's reference outputs on this device "
                                  "(the bundle carries no reference outputs; tolerance None)")


def test_an_accepted_update_says_what_serves(tiny_bundle, tmp_path):
    new = _copy(tiny_bundle, tmp_path, "new")
    bundle, backend, update = open_update(new, tiny_bundle, onnx)
    assert bundle.root == new and backend == "onnx"
    assert update == BundleUpdate(True, bundle.manifest.name, None, None)
    assert update.to_dict() == {"accepted": True, "serving": bundle.manifest.name, "rejected": None, "reason": None}


def test_a_rejected_update_logs_and_serves_the_previous_one(tiny_bundle, tmp_path, caplog):
    bad = _tampered(tiny_bundle, tmp_path)  # refused only because the update is verified
    with caplog.at_level("WARNING", logger="edgerec.runtime"):
        bundle, backend, update = open_update(bad, tiny_bundle, onnx)
    name = bundle.manifest.name
    reason = "bundle file model_card.json fails its sha256 check; it is corrupt or was modified"
    assert bundle.root == tiny_bundle and backend == "onnx"
    assert update == BundleUpdate(False, name, "tampered", reason)
    logged = [r for r in caplog.records if r.name == "edgerec.runtime"]
    assert [(r.levelno, r.getMessage()) for r in logged] == [
        (logging.WARNING, f"bundle update tampered rejected, still serving {name}: {reason}")]


def test_the_previous_bundle_is_verified_again(tiny_bundle, tmp_path):
    bad = _wrong_references(tiny_bundle, tmp_path)
    previous = _tampered(tiny_bundle, tmp_path, "previous")
    with pytest.raises(BundleError) as refused:
        open_update(bad, previous, onnx)
    message = str(refused.value)
    assert message.startswith("the update was rejected (its user encoder does not reproduce")
    assert message.endswith("and the previous bundle cannot be opened either (bundle file model_card.json fails its "
                            "sha256 check; it is corrupt or was modified); reinstall a bundle")


def test_no_host_path_reaches_a_reason(tiny_bundle, tmp_path):
    """Errors that name the whole path (an engine choice, an OS error) are cut to the bundle's name."""
    new, previous = _copy(tiny_bundle, tmp_path, "new"), _copy(tiny_bundle, tmp_path, "previous")

    def refuse(bundle):
        raise ConfigError(f"no engine for {bundle.root}")

    def refuse_new(bundle):
        if bundle.root == new:
            raise OSError(f"cannot map {bundle.root}/user_encoder.onnx")
        return "onnx"

    _, _, update = open_update(new, previous, refuse_new)
    assert update.reason == "cannot map new/user_encoder.onnx" and update.serving
    with pytest.raises(BundleError) as refused:
        open_update(new, previous, refuse)
    assert str(refused.value) == ("the update was rejected (no engine for new) and the previous bundle cannot be "
                                  "opened either (no engine for previous); reinstall a bundle")


def test_an_os_error_of_the_previous_bundle_is_a_bundle_error(tiny_bundle, tmp_path):
    new, previous = _wrong_references(tiny_bundle, tmp_path), _copy(tiny_bundle, tmp_path, "previous")

    def unreadable(bundle):
        if bundle.root == previous:
            raise PermissionError(f"cannot read {previous}/user_encoder.onnx")
        return "onnx"

    with pytest.raises(BundleError) as refused:
        open_update(new, previous, unreadable)
    assert str(refused.value).endswith("the previous bundle cannot be opened either (cannot read "
                                       "previous/user_encoder.onnx); reinstall a bundle")


def test_packed_bundles_in_a_folder_the_app_cannot_write_are_unpacked_in_spare(tiny_bundle, tmp_path, monkeypatch):
    shipped, spare = tmp_path / "shipped", tmp_path / "spare"
    shipped.mkdir()
    spare.mkdir()
    new = pack(_copy(tiny_bundle, tmp_path, "new"), shipped / "new.edgerec")
    previous = pack(_copy(tiny_bundle, tmp_path, "previous"), shipped / "previous.edgerec")
    monkeypatch.setattr(pack_module, "_writable", lambda folder: folder == spare)
    bundle, _, update = open_update(new, previous, onnx, spare)
    assert update.accepted and bundle.root.parent == spare
    _, _, update = open_update(new, tiny_bundle, onnx)  # nowhere to unpack the update
    assert not update.accepted and update.reason.startswith("packed bundle new.edgerec is in a folder this app cannot write")
    bad = shipped / "damaged.edgerec"
    bad.write_bytes(b"not a tar file")
    bundle, _, update = open_update(bad, previous, onnx, spare)  # the previous one is unpacked in spare too
    assert not update.accepted and bundle.root.parent == spare


def test_an_update_whose_encoder_takes_no_input_falls_back(tmp_path):
    """UserEncoder's IndexError (a graph of constants) escaped the fallback as a raw traceback."""
    from pathlib import Path

    import onnx as onnx_lib
    from bundle_edit import rewrite
    from onnx import TensorProto, helper

    from edgerec.runtime import Recommender

    golden = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
    update = Path(shutil.copytree(golden, tmp_path / "update"))
    out = helper.make_tensor_value_info("user_vector", TensorProto.FLOAT, [1, 8])
    value = helper.make_tensor("v", TensorProto.FLOAT, [1, 8], [0.1] * 8)
    graph = helper.make_graph([helper.make_node("Constant", [], ["user_vector"], value=value)], "c", [], [out])
    onnx_lib.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), update / "user_encoder.onnx")
    rewrite(update, lambda m: None)
    with Recommender.open(update, fallback=golden, backend="onnx") as rec:
        assert not rec.update.accepted and "takes no input" in rec.update.reason


def test_a_fallback_that_is_not_a_bundle_is_refused_at_once(tiny_bundle, tmp_path):
    """A data folder given as the fallback was accepted while the update verified: the app learned it on
    the day an update failed, with nothing left to serve."""
    new, data = _copy(tiny_bundle, tmp_path, "new"), tmp_path / "data"
    data.mkdir()
    (data / "items.csv").write_text("item_id\nx\n")
    for fallback in (data, tmp_path / "missing"):
        with pytest.raises(BundleError) as refused:
            open_update(new, fallback, onnx)
        assert str(refused.value) == (f"the fallback {fallback.name} is not a bundle (no manifest.json, not a packed "
                                      "file); pass the folder or packed file of the bundle the device serves now")
