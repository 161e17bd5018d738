"""Bundle updates: a new bundle is served only if it verifies and passes its reference check here (within
the bundle's tolerance, never looser than the runtime's floor: runtime/reference.py); otherwise the
previous bundle keeps serving, and the reason is kept for stats() and the log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edgerec.errors import BundleError, EdgerecError
from edgerec.runtime import checks
from edgerec.runtime.bundle import MANIFEST, Bundle
from edgerec.runtime.reference import check_references


@dataclass
class BundleUpdate:
    accepted: bool  # the new bundle is the one serving
    serving: str  # manifest name of the bundle that serves
    rejected: str | None = None  # file or folder name of the bundle that was turned down
    reason: str | None = None  # why it was turned down

    def to_dict(self) -> dict:
        return asdict(self)


def open_checked(path, verify: bool, choose: Callable[[Bundle], str], spare=None) -> tuple[Bundle, str]:
    """Open, verify and reference-check a bundle for the engine `choose` picks; BundleError if it fails.
    `spare`: where a packed bundle in a read-only folder is unpacked (Bundle.open)."""
    from edgerec.runtime.ranking import (
        open_scorer,  # the checks its stages make when they open: a ranker or
    )
    from edgerec.runtime.stages import (
        check_rankers,  # scorer refused there raised past the fallback
    )

    bundle = Bundle.open(path, verify=verify, spare=spare)
    backend = choose(bundle)
    check_rankers(bundle.manifest)
    open_scorer(bundle.manifest, bundle)
    report = check_references(bundle, [backend])
    if not report["passed"]:
        failed = "; ".join(f"{m['format']}: cosine {m['cosine_min']:.3f}, top-k agreement {m['top_k_agreement']:.2f}"
                           for m in report["models"] if not m["passed"])
        floor = f", {report['tolerance_rule']}" if report.get("tolerance_source") == "floor" else ""
        raise BundleError("its user encoder does not reproduce the bundle's reference outputs on this device "
                          f"({failed or report.get('reason', 'no encoder checked')}; tolerance {report.get('tolerance')}"
                          f"{floor})")
    return bundle, backend


def open_update(new, previous, choose: Callable[[Bundle], str], spare=None) -> tuple[Bundle, str, BundleUpdate]:
    """The new bundle if it verifies and conforms here, else the previous one (verified again)."""
    if not (Path(previous).is_file() or (Path(previous) / MANIFEST).is_file()):  # found out now, not on the day it is needed
        raise BundleError(f"the fallback {checks.file_name(previous)} is not a bundle (no {MANIFEST}, not a packed file); "
                          "pass the folder or packed file of the bundle the device serves now")
    try:
        bundle, backend = open_checked(new, True, choose, spare)
        return bundle, backend, BundleUpdate(True, bundle.manifest.name)
    except (EdgerecError, OSError) as exc:
        reason = str(exc).replace(str(Path(new)), Path(new).name)  # no host paths in stats or logs
    try:
        bundle = Bundle.open(previous, verify=True, spare=spare)
        backend = choose(bundle)
    except (EdgerecError, OSError) as exc:  # as for the update: the app sees a BundleError, nothing else
        previous_reason = str(exc).replace(str(Path(previous)), Path(previous).name)
        raise BundleError(f"the update was rejected ({reason}) and the previous bundle cannot be opened either "
                          f"({previous_reason}); reinstall a bundle") from None
    import logging  # here, not at the top: only a rejected update logs (the module costs 0.7 MB on a device)

    logging.getLogger("edgerec.runtime").warning("bundle update %s rejected, still serving %s: %s", Path(new).name, bundle.manifest.name, reason)
    return bundle, backend, BundleUpdate(False, bundle.manifest.name, Path(new).name, reason)
