"""Mutation score of the pure rules: mutmut over ``app/rules/`` and the lifecycle table (pyproject.toml
``[tool.mutmut]``), then the verdict.

    ./scripts/uv run python -m tests.mutation_score [--max-children N] [--if-changed]

Prints the score and every mutant that was not killed. Fails when a surviving mutant is not listed in
``tests/mutation_equivalents.txt`` (each listed one is a mutant no test can kill because it does not change what
the code does — the file says why, one line each), when a listed one no longer survives (the list must stay
true), or when the score is under 90 %. The score counts the listed equivalents out of the total.

A passing run records a digest of what it checked — the mutated files, their tests, the list of equivalents — in
``tests/mutation_checked.sha256`` (commit it). ``--if-changed`` (CI) runs only when that digest no longer matches,
so CI runs mutmut on every change to the rules or their tests and spends nothing when neither changed.

A mutant's name carries its function and its number within that function, so the list goes stale when that
function changes: that is on purpose — a changed rule's equivalents are reviewed again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"
CHECKED = ROOT / "tests" / "mutation_checked.sha256"
TARGET = 0.90
RESULT_LINE = re.compile(r"^\s*(?P<name>\S+): (?P<verdict>.+?)\s*$")


def equivalents() -> dict[str, str]:
    """Mutant name → why it is equivalent."""
    listed: dict[str, str] = {}
    for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, why = line.partition(" ")
            listed[name] = why.strip()
    return listed


def checked_digest() -> str:
    """SHA-256 over the mutmut settings, the mutated files, the tests mutmut runs and the equivalents."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    paths = [ROOT / p for p in config["only_mutate"]] + [EQUIVALENTS]
    for selected in config["pytest_add_cli_args_test_selection"]:
        target = ROOT / selected
        paths += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    digest = hashlib.sha256(repr(sorted(config.items())).encode())
    for path in sorted(set(paths)):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def mutmut(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - mutmut from our own environment on our own tree
        [sys.executable, "-m", "mutmut", *args], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return done.stdout


def not_killed() -> dict[str, str]:
    """Mutant name → mutmut's verdict, for every mutant that was not killed."""
    out = mutmut("results")
    found = {}
    for line in out.splitlines():
        match = RESULT_LINE.match(line)
        if match and match["verdict"] != "killed":
            found[match["name"]] = match["verdict"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--if-changed", action="store_true", help="skip when the last passing run checked the same")
    args = parser.parse_args()
    digest = checked_digest()
    if args.if_changed and CHECKED.exists() and CHECKED.read_text().strip() == digest:
        print(f"the rules and their tests are as the last passing mutation run checked them ({digest[:12]}): skipped")
        return 0
    mutmut("run", "--max-children", str(args.max_children))
    mutmut("export-cicd-stats")
    stats = json.loads((ROOT / "mutants" / "mutmut-cicd-stats.json").read_text())
    listed = equivalents()
    survivors = not_killed()
    unexplained = {name: verdict for name, verdict in survivors.items() if name not in listed}
    stale = sorted(name for name in listed if name not in survivors)
    equivalent = [name for name in listed if name in survivors]
    judged = stats["total"] - len(equivalent)
    score = stats["killed"] / judged if judged else 1.0

    print(f"mutants {stats['total']}: killed {stats['killed']}, equivalent (listed) {len(equivalent)}, ", end="")
    print(f"not killed and not listed {len(unexplained)}")
    print(f"score {score:.1%} of the non-equivalent mutants (target {TARGET:.0%})")
    for name, verdict in sorted(unexplained.items()):
        print(f"  {verdict:<10} {name}   (see: mutmut show {name})")
    for name in stale:
        print(f"  listed as equivalent but killed or gone: {name} — remove it from {EQUIVALENTS.name}")
    passed = score >= TARGET and not unexplained and not stale
    if passed:
        CHECKED.write_text(digest + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
