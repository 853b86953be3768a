"""Per-input check cost on the recorded SDXL schema (what ``use()`` pays before each run).

    python -m benchmarks.schema_check [--before DIR] [--repeat 2000] [--rounds 5]

Times :func:`replicate_async._checks.schema.check_input` on the schema of
``tests/examples/version-get-sdxl.json`` with a valid input (every input given) and an
input with five problems, the valid input through a ``use()`` function's kept
``ModelSchema`` (what each call pays: its plan of the schema, made once), and on a
schema with a catastrophic ``pattern`` (the time one check can block the loop).
``--before DIR`` adds the package in ``DIR/replicate_async_before`` (see README: "Before
and after in one run"), measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

SDXL = Path(__file__).parent.parent / "tests" / "examples" / "version-get-sdxl.json"

VALID = {
    "prompt": "an astronaut riding a rainbow unicorn",
    "negative_prompt": "",
    "image": "https://example.com/a.png",
    "mask": "https://example.com/m.png",
    "width": 1024,
    "height": 1024,
    "num_outputs": 2,
    "scheduler": "K_EULER",
    "num_inference_steps": 30,
    "guidance_scale": 7.5,
    "prompt_strength": 0.8,
    "seed": 42,
    "refine": "expert_ensemble_refiner",
    "high_noise_frac": 0.8,
    "apply_watermark": False,
    "lora_scale": 0.6,
}
INVALID = {
    **VALID,
    "width": "wide",
    "num_outputs": 9,
    "scheduler": "nope",
    "image": "x",
    "seed": 1.5,
}
#: A pattern that backtracks exponentially on a run of "a" followed by a mismatch.
CATASTROPHIC = {
    "type": "object",
    "properties": {"text": {"type": "string", "pattern": "^(a|aa)+$"}},
}
CATASTROPHIC_INPUT = {"text": "a" * 32 + "!"}


def _per_call(check: Any, schema: Any, value: Any, repeat: int) -> float:
    check(schema, value)  # warm (compiled patterns, caches)
    start = time.thread_time()  # CPU time: another process's load does not count
    for _ in range(repeat):
        check(schema, value)
    return (time.thread_time() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="directory holding replicate_async_before")
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    packages = ["replicate_async"]
    if args.before is not None:
        sys.path.insert(0, str(args.before))
        packages.append("replicate_async_before")
    schema = json.loads(SDXL.read_text())["openapi_schema"]
    checks = {name: _module(name, "_checks.schema", "_schema").check_input for name in packages}
    # What a use() function runs per call: the model's schema object, made once.
    kept = {
        name: _module(name, "_workflows.use", "_use").ModelSchema("o/m", None, schema, "o/m")
        for name in packages
    }
    best: dict[str, list[float]] = {name: [math.inf] * 3 for name in packages}
    for _ in range(args.rounds):  # interleaved, best of each: the machine's noise cancels
        for name, check in checks.items():
            valid = _per_call(check, schema, VALID, args.repeat) * 1e6
            invalid = _per_call(check, schema, INVALID, args.repeat) * 1e6
            kept_valid = _per_call(_inspecting(kept[name]), schema, VALID, args.repeat)
            measured = (valid, invalid, kept_valid * 1e6)
            best[name] = [min(old, new) for old, new in zip(best[name], measured, strict=True)]
    print(
        f"{'package':<24} {'valid µs':>10} {'invalid µs':>11} {'use() valid µs':>15}"
        f" {'catastrophic ms':>16}"
    )
    for name, check in checks.items():
        start = time.perf_counter()
        check(CATASTROPHIC, CATASTROPHIC_INPUT)
        worst = (time.perf_counter() - start) * 1e3
        valid, invalid, kept_valid = best[name]
        print(f"{name:<24} {valid:>10.1f} {invalid:>11.1f} {kept_valid:>15.1f} {worst:>16.1f}")


def _inspecting(kept: Any) -> Any:
    """A ``check(schema, value)`` that asks the kept ``ModelSchema`` instead."""
    return lambda _schema, value: kept.inspect(value)


def _module(package: str, *names: str) -> Any:
    """The first of ``names`` that ``package`` has (modules moved between versions)."""
    for name in names[:-1]:
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError:
            continue
    return importlib.import_module(f"{package}.{names[-1]}")


if __name__ == "__main__":
    main()
