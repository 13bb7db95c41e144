#!/usr/bin/env python3
"""Copies each results/NAME.md into README.md between `<!-- results:NAME -->` and
`<!-- /results:NAME -->`, so the README's tables are always the files the bench commands
wrote. Fails naming any marker whose file is missing."""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARK = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


def main() -> int:
    readme = REPO / "README.md"
    text = readme.read_text()
    missing = []

    def fill(m: re.Match) -> str:
        path = REPO / "results" / f"{m[2]}.md"
        if not path.exists():
            missing.append(str(path.relative_to(REPO)))
            return m[0]
        return m[1] + path.read_text().rstrip("\n") + "\n" + m[4]

    text = MARK.sub(fill, text)
    readme.write_text(text)
    if missing:
        print("readme_tables: no " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
