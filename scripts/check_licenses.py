#!/usr/bin/env python3
"""Checks that every crate in the dependency graph is compatible with MIT OR Apache-2.0.

Reads `cargo metadata` for all targets and platforms, evaluates each crate's SPDX license
expression against the permissive licenses below, and fails naming every crate that is not
satisfiable with them (or that declares no license at all).
"""
import json
import re
import subprocess
import sys

# Permissive licenses whose terms let the result be distributed as MIT OR Apache-2.0.
ALLOWED = {
    "MIT", "MIT-0", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Zlib",
    "Unicode-3.0", "Unicode-DFS-2016", "CC0-1.0", "Unlicense", "BSL-1.0", "0BSD",
}
# Exceptions that only widen a license's permissions.
EXCEPTIONS = {"LLVM-exception"}


def satisfiable(expr: str) -> bool:
    """Evaluates an SPDX expression: OR needs one side allowed, AND both."""
    tokens = re.findall(r"\(|\)|[A-Za-z0-9.+\-]+", expr.replace("/", " OR "))
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom():
        tok = take()
        if tok == "(":
            value = disjunction()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {expr!r}")
        else:
            value = tok.rstrip("+") in ALLOWED
        if peek() == "WITH":
            take()
            value = value and take() in EXCEPTIONS
        return value

    def conjunction():
        value = atom()
        while peek() == "AND":
            take()
            value = atom() and value
        return value

    def disjunction():
        value = conjunction()
        while peek() == "OR":
            take()
            value = conjunction() or value
        return value

    result = disjunction()
    if pos != len(tokens):
        raise ValueError(f"cannot parse license expression {expr!r}")
    return result


def main() -> int:
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked"], text=True))
    workspace = set(meta["workspace_members"])
    bad = []
    for pkg in meta["packages"]:
        license_expr = pkg.get("license")
        if not license_expr:
            bad.append(f"{pkg['name']} {pkg['version']}: no SPDX license field")
        elif not satisfiable(license_expr):
            bad.append(f"{pkg['name']} {pkg['version']}: {license_expr}")
        elif pkg["id"] in workspace and license_expr != "MIT OR Apache-2.0":
            bad.append(f"{pkg['name']} (ours) must be MIT OR Apache-2.0, is {license_expr}")
    checked = len(meta["packages"])
    if bad:
        print(f"license check: {len(bad)} of {checked} crates are not compatible:")
        for line in bad:
            print("  " + line)
        return 1
    print(f"license check: all {checked} crates compatible with MIT OR Apache-2.0")
    return 0


if __name__ == "__main__":
    assert satisfiable("MIT OR Apache-2.0") and satisfiable("(MIT OR Apache-2.0) AND Unicode-3.0")
    assert satisfiable("Apache-2.0 WITH LLVM-exception") and satisfiable("MIT/Apache-2.0")
    assert not satisfiable("AGPL-3.0-only") and not satisfiable("MIT AND GPL-2.0")
    sys.exit(main())
