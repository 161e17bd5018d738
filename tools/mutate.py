"""Mutation testing of the modules that decide behaviour (`make mutate`; not part of CI).

mutmut names a mutant after its file path ("runtime/policies.py" -> "runtime.policies.x_f__mutmut_1")
and activates it only when the running function's `__module__` equals that name. Our folders are
subpackages of one import name (pyproject package-dir: runtime/ is edgerec.runtime), so run on the
repository itself every mutant would look "survived". This driver therefore stages a tree laid out
as the import names (build/mutation/stage/edgerec/runtime/...), runs mutmut there (its mutants/ folder
goes first on sys.path, ahead of the editable install's finder, which sits at the end of
sys.meta_path), and reads the results back per module, with the documented equivalent mutants of
tools/mutation-equivalents.txt counted apart.

    python tools/mutate.py                                   # every default module
    python tools/mutate.py runtime/policies.py data/split.py # a subset
    python tools/mutate.py --retest                          # re-run the functions that had survivors
    python tools/mutate.py --survivors                       # re-run only the mutants not killed
    python tools/mutate.py --report runtime/history.py       # the table of the last runs (build/…/statuses.json)
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tools" / "mutation-equivalents.txt"

# "path" mutates the whole file; "path::Class.method" or "path::function" only that function
DEFAULT_MODULES = [
    "runtime/policies.py", "runtime/list_order.py", "runtime/history.py", "runtime/retention.py",
    "runtime/bundle.py", "runtime/pack.py", "runtime/retrieval.py", "runtime/item_table.py",
    "export/parity.py", "compress/quantize.py", "compress/distill.py",
    "models/metrics.py", "models/evaluation.py",
    "data/split.py", "data/schema.py::Interactions.sorted_by_time",
    "device_tests/bench.py::check_budgets", "device_tests/timing.py::percentiles",
    "device_tests/bench.py::run_bench",
]
# Left out of mutation runs: the wheel test rebuilds the package from the repository layout, which
# the stage does not have; the demo test runs the whole pipeline (minutes per pytest session, paid
# again by every mutant it reaches) and checks the report's shape, which the unit tests cover finer.
STAGE_IGNORED_TESTS = ["tests/test_packaging.py", "tests/test_pipeline.py"]
STATUS_COLUMNS = ["killed", "survived", "timeout", "no tests", "other"]


def package_dirs() -> dict[str, str]:
    """Import name -> folder, as the editable install maps them."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]


def staged_path(spec: str) -> tuple[str, str | None]:
    """'runtime/policies.py::f' -> ('edgerec/runtime/policies.py', 'f')."""
    path, _, function = spec.partition("::")
    folder, _, rest = path.partition("/")
    for name, source in package_dirs().items():
        if source == folder and "." in name:
            return f"{name.replace('.', '/')}/{rest}", function or None
    raise SystemExit(f"{spec}: not in a package folder of pyproject.toml ({', '.join(package_dirs().values())})")


def mutant_glob(spec: str) -> str:
    """The mutmut name pattern of a module spec's mutants (and of its functions' test mapping)."""
    path, function = staged_path(spec)
    module = path[:-3].replace("/", ".")
    if function is None:
        return f"{module}.*"
    cls, _, name = function.rpartition(".")
    return f"{module}.x\u01c1{cls}\u01c1{name}*" if cls else f"{module}.x_{name}*"


def stage(build: Path, modules: list[str], tests: list[str], jobs: int, keep: bool) -> Path:
    """Copy the package as its import names, the tests, and a pyproject with the mutmut settings."""
    stage_dir = build / "stage"
    if not keep:
        shutil.rmtree(stage_dir, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name, folder in package_dirs().items():
        # copy2 keeps modification times, so a re-run (--retest) regenerates only changed files
        shutil.copytree(ROOT / folder, stage_dir / name.replace(".", "/"), ignore=ignore, dirs_exist_ok=True,
                        copy_function=shutil.copy2)
    shutil.rmtree(stage_dir / "tests", ignore_errors=True)
    shutil.copytree(ROOT / "tests", stage_dir / "tests", ignore=ignore, copy_function=shutil.copy2)
    # tests read the golden bundle and cases (spec/golden) and the documented commands (docs/) from the
    # repository root, as data
    for data in ("spec", "docs"):
        shutil.rmtree(stage_dir / data, ignore_errors=True)
        shutil.copytree(ROOT / data, stage_dir / data, ignore=ignore, copy_function=shutil.copy2)
    if not list((stage_dir / "edgerec" / "runtime").glob("_scan*.so")):
        print("note: runtime/_scan*.so is not built; the scan falls back to numkong/numpy (run `make setup`)")
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    only = sorted({staged_path(m)[0] for m in modules})
    selection = tests or ["tests"]
    ignored = [f"--ignore={t}" for t in STAGE_IGNORED_TESTS]
    text = "\n".join([
        "# written by tools/mutate.py for this stage; edit the driver, not this file",
        "[tool.pytest.ini_options]",
        f"testpaths = {json.dumps(pytest_options['testpaths'])}",
        f"addopts = {json.dumps(pytest_options['addopts'])}",
        # test helpers import by name (tests/handmade.py); the path is relative to the stage as it is to ROOT
        f"pythonpath = {json.dumps(pytest_options.get('pythonpath', []))}",
        f"markers = {json.dumps(pytest_options['markers'])}",
        "",
        "[tool.mutmut]",
        'source_paths = ["edgerec"]',
        'also_copy = ["spec", "docs"]',  # the golden bundle and cases, and the docs, the tests read from the root
        f"only_mutate = {json.dumps(only)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(selection + ignored)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
        # torch in a forked pytest process can hang on its thread pool; the fork server forks clean
        'process_isolation = "forkserver"',
        # the stage lives inside the repository's work tree; mutmut's git checks would read that
        "use_git_change_detection = false",
        "",
    ])
    (stage_dir / "pyproject.toml").write_text(text)
    return stage_dir


def source_key() -> str:
    """A hash of the package sources and the tests' conftest: the tiny bundle is built from them."""
    digest = hashlib.sha256()
    files = [p for folder in package_dirs().values() for p in sorted((ROOT / folder).rglob("*.py"))]
    for path in files + [ROOT / "tests" / "conftest.py"]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def warm_cache(caches: Path) -> Path:
    """The tests' tiny bundle, built once from the clean code before any mutant is active.

    Kept per source hash, so runs on unchanged code (other modules, --retest) reuse it; older
    hashes stay (a few MB each) because a run started before an edit may still be reading them.
    """
    cache = caches / source_key()
    if not (cache / "tiny_world" / "complete").exists():
        cache.mkdir(parents=True, exist_ok=True)
        code = ("import runpy, sys; from pathlib import Path; "
                "runpy.run_path(sys.argv[1])['cached_tiny_world'](Path(sys.argv[2]))")
        subprocess.run([sys.executable, "-c", code, str(ROOT / "tests" / "conftest.py"), str(cache)],
                       check=True, cwd=ROOT)
    return cache


def load_equivalents() -> dict[str, str]:
    """Mutant name -> why it is equivalent (one per line: name, whitespace, reason)."""
    out = {}
    if EQUIVALENTS.exists():
        for line in EQUIVALENTS.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                out[name] = reason.strip()
    return out


def read_results(stage_dir: Path, modules: list[str]) -> dict[str, dict[str, str]]:
    """Per module spec: mutant name -> status, from mutmut's meta files."""
    from mutmut.stats import status_by_exit_code

    results = {}
    for spec in modules:
        path, _ = staged_path(spec)
        meta = stage_dir / "mutants" / f"{path}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        pattern = mutant_glob(spec)
        results[spec] = {name: status_by_exit_code[code] for name, code in codes.items()
                         if fnmatch.fnmatchcase(name, pattern)}
    return results


def table(results: dict[str, dict[str, str]], equivalents: dict[str, str]) -> tuple[list[dict], list[str]]:
    rows, stale = [], []
    for spec, statuses in results.items():
        row = {"module": spec, "total": len(statuses), **{c: 0 for c in STATUS_COLUMNS}, "equivalent": 0}
        for name, status in statuses.items():
            if name in equivalents and status == "survived":
                row["equivalent"] += 1
            else:
                if name in equivalents:
                    stale.append(f"{name} is listed as equivalent but was {status}")
                row[status if status in STATUS_COLUMNS else "other"] += 1
        scored = row["total"] - row["equivalent"]
        row["score"] = round(row["killed"] / scored, 4) if scored else None
        row["survivors"] = sorted(n for n, s in statuses.items() if s == "survived" and n not in equivalents)
        rows.append(row)
    return rows, stale


def print_table(rows: list[dict]) -> None:
    head = ["module", "total", "killed", "survived", "timeout", "no tests", "other", "equivalent", "score"]
    width = max([len(r["module"]) for r in rows] + [6])
    print(f"{head[0]:<{width}} " + " ".join(f"{h:>10}" for h in head[1:]))
    for r in rows:
        score = "-" if r["score"] is None else f"{100 * r['score']:.1f}%"
        print(f"{r['module']:<{width}} " + " ".join(f"{r[h]:>10}" for h in head[1:-1]) + f" {score:>10}")
    for r in rows:
        for name in r["survivors"]:
            print(f"  survived: {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="repository paths (default: every module listed in the driver)")
    parser.add_argument("--tests", nargs="*", default=[], help="test files to run (default: the whole suite)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "mutation")
    parser.add_argument("--json", type=Path, default=None, help="where to write the table (default: build/…/report.json)")
    parser.add_argument("--retest", action="store_true",
                        help="keep the previous stage and re-run the functions that had a mutant not killed")
    parser.add_argument("--survivors", action="store_true",
                        help="keep the previous stage and re-run only the mutants not killed and not listed as "
                             "equivalent (after adding tests to unchanged code; a code change renumbers mutants, "
                             "so use --retest then)")
    parser.add_argument("--report", action="store_true", help="print the table of the last runs, run nothing")
    args = parser.parse_args(argv)
    modules = args.modules or DEFAULT_MODULES
    build = args.build.resolve()
    began = time.time()
    if args.report:
        return report(build, modules, load_statuses(build, modules), args, began)
    keep = args.retest or args.survivors
    stage_dir = stage(build, modules, args.tests, args.jobs, keep=keep)
    cache = warm_cache(ROOT / "build" / "mutation-cache")

    names = [mutant_glob(m) for m in modules]
    previous: dict[str, dict[str, str]] = {}
    if keep and (stage_dir / "mutants").exists():
        previous = load_statuses(build, modules) or read_results(stage_dir, modules)
        left = {n for statuses in previous.values() for n, s in statuses.items() if s != "killed"}
        if args.survivors:  # a listed equivalent survives by definition; re-running it costs every test
            left -= set(load_equivalents())
        # --retest takes whole functions: an edited function's mutants are renumbered when regenerated
        names = sorted(left if args.survivors else {n.partition("__mutmut_")[0] + "*" for n in left}) or names
    env = dict(os.environ, EDGEREC_TEST_CACHE=str(cache),
               # subprocesses the tests start (the bench worker, the CLI) import the mutated code too
               PYTHONPATH=os.pathsep.join(filter(None, [str(stage_dir / "mutants"), os.environ.get("PYTHONPATH")])))
    # made before mutmut starts: Python caches a missing sys.path folder as "nothing here" for good
    (stage_dir / "mutants").mkdir(exist_ok=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    run = subprocess.run([str(mutmut), "run", "--max-children", str(args.jobs), *names], cwd=stage_dir, env=env)
    if run.returncode != 0:
        print(f"mutmut exited with {run.returncode}; see its output above", file=sys.stderr)
        return run.returncode

    results = read_results(stage_dir, modules)
    for spec, statuses in results.items():  # mutmut forgets the verdicts of mutants it did not re-run
        for name, status in statuses.items():
            if status == "not checked" and previous.get(spec, {}).get(name, status) != status:
                statuses[name] = previous[spec][name]
    (build / "statuses.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return report(build, modules, results, args, began)


def load_statuses(build: Path, modules: list[str]) -> dict[str, dict[str, str]]:
    """Per module spec: mutant name -> status as the last run left it (merged over partial re-runs)."""
    path = build / "statuses.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    return {spec: saved[spec] for spec in modules if spec in saved}


def report(build: Path, modules: list[str], results: dict[str, dict[str, str]], args, began: float) -> int:
    rows, stale = table(results, load_equivalents())
    print()
    print_table(rows)
    for line in stale:
        print(f"note: {line}")
    minutes = (time.time() - began) / 60
    print(f"\n{minutes:.1f} minutes; score = killed / (total - equivalent)")
    out = args.json or build / "report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"modules": rows, "minutes": round(minutes, 1), "tests": args.tests or ["tests"],
                               "stale_equivalents": stale}, indent=2))
    print(f"table written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
