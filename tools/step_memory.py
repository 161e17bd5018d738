"""Peak memory and time of one pipeline step, and where in the code the memory rose.

    python tools/step_memory.py cli data import csv LOG --out D ...     # any `edgerec` command
    python tools/step_memory.py step OUT DATA NAME [--full]             # one step of `demo --data DATA`

`step` runs the demo study NAME (data, baselines, teacher, student, ranker, scorer, export, ...) of
`edgerec demo --data DATA --quick` (`--full`: without --quick) in the folder OUT, which must hold what
the steps before it wrote. At the end it prints, to stderr, the wall time, CPU time (user, system),
VmHWM (the peak resident set), and the Python stack each time the resident set rose by more than
1% + 20 MB (sampled every 50 ms), so the lines that allocate the peak are named. Run the steps in
separate processes: memory that one step leaves behind is then not counted in the next.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
import traceback


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class Sampler(threading.Thread):
    """Polls VmRSS; keeps the main thread's innermost frames at every new high."""

    def __init__(self, main: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.main, self.every, self.began = main, every, time.perf_counter()
        self.peak, self.marks = 0, []

    def run(self) -> None:
        while True:
            rss = _status("VmRSS")
            if rss > self.peak * 1.01 + (20 << 20):
                self.peak = rss
                frames = traceback.extract_stack(sys._current_frames().get(self.main))[-4:]
                where = " <- ".join(f"{f.filename.rsplit('/', 2)[-2:][-1]}:{f.lineno} {f.name}" for f in reversed(frames))
                self.marks.append((time.perf_counter() - self.began, rss, where))
            time.sleep(self.every)


def _step(out: str, data: str, name: str, quick: bool) -> None:
    from edgerec.pipeline.demo import DemoConfig, demo_studies

    studies = {s.name: s for s in demo_studies(DemoConfig.make(out, quick=quick, data=data))}
    if name not in studies:
        sys.exit(f"no step {name!r}; the steps: {', '.join(studies)}")
    result = studies[name].run(lambda *a, **_k: print(*a, flush=True))
    print(result.record)


def main(argv: list[str]) -> None:
    sampler = Sampler(threading.get_ident())
    sampler.start()
    try:
        if argv[:1] == ["step"] and len(argv) >= 4:
            _step(argv[1], argv[2], argv[3], quick="--full" not in argv[4:])
        elif argv[:1] == ["cli"]:
            from edgerec.cli.main import cli

            cli.main(argv[1:], prog_name="edgerec", standalone_mode=False)
        else:
            sys.exit(__doc__)
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"\nwall {time.perf_counter() - sampler.began:.1f} s, cpu user {usage.ru_utime:.1f} s, system "
              f"{usage.ru_stime:.1f} s, VmHWM {_status('VmHWM') / 2 ** 30:.2f} GiB", file=sys.stderr)
        for seconds, rss, where in sampler.marks[-20:]:
            print(f"  {seconds:7.1f} s {rss / 2 ** 30:5.2f} GiB  {where}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
