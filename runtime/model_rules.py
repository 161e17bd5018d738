"""The manifest's rules on its models that the schema cannot state (spec §1 rule 7), checked on open."""

from __future__ import annotations

from edgerec.errors import BundleError


def history_axis(entry) -> int | None:
    """The history length an entry's manifest shape fixes ((batch, L) with an integer L), else None."""
    shape = list(entry.inputs[0].shape) if entry.inputs else []
    return shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None


def check_models(models: list, dim: int) -> None:
    """One model per role and format; a user encoder's fixed output width is `dim`, and its fixed
    history axis, where it has one, is its `history_length` (which one would a runtime pad to?)."""
    seen = set()
    for i, entry in enumerate(models):
        where = f"manifest.json: models[{i}] ({entry.file})"
        if (entry.role, entry.format) in seen:
            raise BundleError(f"{where} is a second {entry.role} for {entry.format}; a bundle holds one model per "
                              "role and format, re-export it")
        seen.add((entry.role, entry.format))
        if entry.role != "user_encoder":
            continue
        width, axis = entry.outputs[0].shape[-1], history_axis(entry)
        if isinstance(width, int) and width != dim:
            raise BundleError(f"{where} outputs vectors {width} wide, the manifest's dim is {dim}; the rule is one "
                              "width for both, re-export")
        if axis is not None and entry.history_length is not None and axis != entry.history_length:
            raise BundleError(f"{where} has history_length {entry.history_length} and an input shape that fixes "
                              f"the history at {axis}; the two must agree, re-export")
