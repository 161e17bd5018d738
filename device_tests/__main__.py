"""`python -m edgerec.device_tests BUNDLE --profile NAME`: the benchmark with only the runtime installed.

It also checks, unless `--no-conformance`, that this device's engines reproduce the bundle's reference
outputs (the runtime's own check, as `edgerec bench --conformance` does): the verdict is the JSON's
`conformance` (a table of it goes to stderr) and a mismatch is a failure.
Exit 0 within every budget of the profile (and conforming), 1 when one is missed or the device does not
reproduce the references, 2 when the run cannot start (a bad argument, profile or bundle: one line of
words, no traceback). (`--worker SPEC OUT` and `--footprint
SPEC OUT` are the internal entries of the measuring child processes.)
"""

from __future__ import annotations

import argparse
import json
import sys

from edgerec.device_tests.bench import BenchConfig, run_bench, run_worker, summary
from edgerec.device_tests.conformance import add_conformance, conformance_lines
from edgerec.device_tests.profiles import DeviceProfile, get_profile
from edgerec.errors import ConfigError, EdgerecError


def _profile(spec: dict) -> DeviceProfile:
    return DeviceProfile(**{k: tuple(v) if k == "cpus" and v else v for k, v in spec["profile"].items()})


def _child(argv: list[str]) -> int:
    """A measuring child process: the bench worker, or one engine alone (footprint.py)."""
    try:
        with open(argv[1]) as handle:
            spec = json.load(handle)
    except (OSError, ValueError):  # the spec run_bench writes is always there: this is not that child
        raise ConfigError(f"{argv[0]} reads the spec file `edgerec bench` writes; this one cannot be read "
                          "as JSON") from None
    profile = _profile(spec)
    if argv[0] == "--worker":
        result = run_worker(spec["bundle"], profile, BenchConfig(**spec["config"]), spec.get("source"))
    else:
        from edgerec.device_tests.footprint import footprint_worker

        result = footprint_worker(spec["bundle"], spec["engine"], profile, BenchConfig(**spec["config"]))
    with open(argv[2], "w") as handle:
        json.dump(result, handle)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("--worker", "--footprint"):
        if len(argv) != 3:
            print(f"Error: {argv[0]} takes SPEC OUT (an entry of the benchmark's own child processes)",
                  file=sys.stderr)
            return 2
        try:
            return _child(argv)
        except EdgerecError as exc:  # the parent shows these words: the message, not a traceback
            print(f"Error: {exc}", file=sys.stderr)
            return 1
    parser = argparse.ArgumentParser(prog="python -m edgerec.device_tests", description=__doc__)
    parser.add_argument("bundle")
    parser.add_argument("--profile", default="phone-mid")
    parser.add_argument("--items", type=int)
    parser.add_argument("--ann", choices=["usearch"])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("--no-conformance", dest="conformance", action="store_false",
                        help="skip the check of the bundle's reference outputs (run only the benchmark)")
    args = parser.parse_args(argv)
    from edgerec.runtime.outputs import output_refusal  # here: the worker processes never need it

    if args.json_out and (why := output_refusal(args.json_out)):  # before the run: it replaced bundle/manifest.json
        print(f"Error: --json {why}", file=sys.stderr)
        return 2
    try:
        cfg = BenchConfig(requests=args.requests, items=args.items, ann=args.ann)
        result = run_bench(args.bundle, get_profile(args.profile), cfg)
    except EdgerecError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if args.conformance:
        print("\n".join(conformance_lines(add_conformance(result, args.bundle))), file=sys.stderr)
    text = json.dumps(summary(result), indent=2)
    if args.json_out:
        with open(args.json_out, "w") as handle:
            handle.write(text)
    print(text)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
