"""Resident memory of the process's mapped files, from /proc/self/smaps (Linux): what tests of the runtime's
footprint read to see which bundle files' pages stay in the process."""

from __future__ import annotations

import re
from pathlib import Path

SMAPS = Path("/proc/self/smaps")


def resident_kb(folder: Path) -> dict[str, int]:
    """Resident kB of each file mapped from under `folder`, by file name."""
    out, name = {}, None
    for line in SMAPS.read_text().splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):  # a mapping's first line (a file's: 6 fields)
            fields = line.split(None, 5)
            path = fields[5].strip() if len(fields) == 6 else ""
            name = Path(path).name if path.startswith(str(folder)) else None
        elif name and line.startswith("Rss:"):
            out[name] = out.get(name, 0) + int(line.split()[1])
    return out
