"""The README's sample: what the quickstart model writes with rhyme and flow controls on.

    python scripts/readme_sample.py --model runs/tiny_cpu [--write]

Runs `jaxrap generate` on the model as a user would (a subprocess, the CLI's own output) and
prints the README block: the command, then its stdout and stderr exactly as written. With
``--write`` it replaces the block between the README's sample markers instead, so the sample
on the front page is never edited by hand (tests/test_docs.py checks the markers and the
command).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- readme-sample: made by scripts/readme_sample.py --write; do not edit by hand -->"
END = "<!-- /readme-sample -->"
PROMPT = "J'traîne au quartier\n"
FLAGS = ("--artist", "Disiz", "--rhyme-scheme", "AABB", "--syllables", "12", "--max-bars", "8", "--seed", "1")


def sample_command(model: str) -> list[str]:
    return ["jaxrap", "generate", "--model", model, "--prompt", PROMPT, *FLAGS]


def shell_line(command: list[str]) -> str:
    """The command as a user types it in bash: a word with a newline as $'...\\n'."""
    return " ".join(_ansi_c_quote(word) if "\n" in word else shlex.quote(word) for word in command)


def _ansi_c_quote(word: str) -> str:
    return "$'" + word.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def render_block(command: list[str], stdout: str, stderr: str) -> str:
    """The README block: markers, the command (a bash block, parsed by the docs tests), its output."""
    output = stdout.rstrip("\n") + ("\n" + stderr.rstrip("\n") if stderr.strip() else "")
    return f"{START}\n```bash\n{shell_line(command)}\n```\n\n```text\n{output}\n```\n{END}"


def replace_block(readme: str, block: str) -> str:
    """``readme`` with the text between the sample markers (markers included) replaced by ``block``."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"readme_sample: {README} has no sample markers ({START} ... {END})")
    return readme[:start] + block + readme[end + len(END):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="runs/tiny_cpu", help="the quickstart run directory")
    parser.add_argument("--write", action="store_true", help=f"replace the sample block of {README.name}")
    args = parser.parse_args(argv)
    command = sample_command(args.model)
    result = subprocess.run([sys.executable, "-m", "jaxrap", *command[1:]], capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return result.returncode
    block = render_block(command, result.stdout, result.stderr)
    if args.write:
        README.write_text(replace_block(README.read_text(encoding="utf-8"), block), encoding="utf-8")
        print(f"wrote the sample into {README}")
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
