"""The demo's experiment steps: a teacher-quality bundle, then the teacher vs student experiment.

The teacher is exported as a plain fp32 ONNX bundle (no parity gate beyond
the exporter's own, no metrics) so the simulator can serve it beside the
student bundle; the comparison itself is a study (studies/experiments.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgerec.studies.base import Progress, Study

TEACHER_NAME = "demo-teacher-fp32"  # the name TeacherBundleStep gives its bundle


@dataclass
class TeacherBundleStep(Study):
    """The teacher as a bundle (fp32 ONNX), to compare online with the student's."""

    name = "teacher_bundle"
    teacher: Path
    data_dir: Path
    out: Path

    def measure(self, progress: Progress) -> dict:
        from edgerec.export.bundle_builder import ExportConfig, export_bundle
        from edgerec.pipeline.steps import remove_own_bundle
        from edgerec.runtime.bundle import Bundle

        # its own bundle, published by a run of this step killed before its record (`demo --resume` was refused:
        # "bundle-teacher exists and is not empty"): exported anew, as the export step does
        remove_own_bundle(self.out, TEACHER_NAME)
        export_bundle(self.teacher, self.data_dir, self.out,
                      ExportConfig(formats=("onnx",), quantize="none", table_dtype="fp32", evaluate=False,
                                   parity_users=100, name=TEACHER_NAME))
        size = Bundle.open(self.out).size_bytes()
        progress("teacher bundle", {"bytes": size})
        return {"bytes": size}
