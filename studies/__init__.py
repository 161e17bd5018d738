"""Studies: host-side measurements over data and bundles, each a `Study` with one interface.

`Study(...).run(progress) -> StudyResult`: the record (JSON), tables to print and,
for some, a plot. The studies: baselines, bench, coldstart, compression, content,
replay. Each lives in its own module (imported on use: most need the host tools).
"""

from edgerec.studies.base import Progress, Study, StudyResult, Table

__all__ = ["Progress", "Study", "StudyResult", "Table"]
