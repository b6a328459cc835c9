"""Docs that cannot drift (issue 21): every relative link and #anchor of README.md and docs/
resolves, every `jaxrap ...` command line in their code blocks parses with the real CLI parser,
every config file they name exists and loads, every subcommand's --help names an existing docs
page, and the README stays a front page."""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import pytest

from jaxrap.cli import COMMANDS, DOCS_PAGES, build_parser
from jaxrap.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def code_blocks(text: str) -> tuple[list[tuple[str, str]], str]:
    """([(language, body) of each fenced code block], the text outside them)."""
    blocks, outside, current, language = [], [], None, ""
    for line in text.splitlines(keepends=True):
        fence = re.match(r"^```([\w-]*)\s*$", line)
        if current is None and fence:
            current, language = [], fence.group(1)
        elif current is not None and line.strip() == "```":
            blocks.append((language, "".join(current)))
            current = None
        elif current is not None:
            current.append(line)
        else:
            outside.append(line)
    return blocks, "".join(outside)


def _prose(text: str) -> str:
    """The page without its fenced code blocks and inline code (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", code_blocks(text)[1])


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").replace("*", "").lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(code_blocks(path.read_text(encoding="utf-8"))[1]):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(path.read_text(encoding="utf-8")))
            if not re.match(r"^[a-z]+:", target)]


@pytest.mark.parametrize("path", PAGES, ids=_page_id)
def test_every_relative_link_and_anchor_resolves(path):
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.name}")
    assert not broken, f"{_page_id(path)}: " + "; ".join(broken)


def test_the_slugs_follow_githubs_rules():
    assert slug("Rhyme and flow") == "rhyme-and-flow"
    assert slug("Default guidance: 1 (off)") == "default-guidance-1-off"
    assert slug("Benchmarks — training") == "benchmarks--training"
    assert slug("`jaxrap plan`: what fits") == "jaxrap-plan-what-fits"
    assert slug("Médine's cœur") == "médines-cœur"


SHELLS = ("bash", "sh", "shell", "console", "")
ANSI_C_STRING = re.compile(r"\$'((?:[^'\\]|\\.)*)'")  # bash's $'...\n...'


def command_lines(text: str) -> list[str]:
    """Each command of the page's shell code blocks that runs jaxrap (or python tui.py), joined
    over backslash continuations: environment assignments before it, other commands of its
    pipeline and redirections after it removed; commands quoted inside another (`gcloud ...
    --command "... && jaxrap train ..."`) too."""
    found = []
    for language, block in code_blocks(text)[0]:
        if language in SHELLS:
            for line in block.replace("\\\n", " ").splitlines():
                found += _commands_in(line)
    return found


def _commands_in(line: str) -> list[str]:
    lexer = shlex.shlex(ANSI_C_STRING.sub("'X'", line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found, words = [], []
    for token in [*lexer, ";"]:
        if token not in ("|", ";", "&&", "||", "&"):
            words.append(token)
            continue
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            words = words[1:]
        if words[:1] == ["jaxrap"] or words[:2] == ["python", "tui.py"]:
            found.append(shlex.join(_without_redirections(words)))
        else:
            found += [command for word in words if "jaxrap " in word for command in _commands_in(word)]
        words = []
    return found


def _without_redirections(words: list[str]) -> list[str]:
    """The words without `> file`, `2> file`, `< file` (the lexer splits `2>` into `2`, `>`)."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in (">", ">>", "<", "&>"):
            if kept and kept[-1] in ("1", "2"):
                kept.pop()
            skip = True
        else:
            kept.append(word)
    return kept


COMMAND_LINES = [(path, line) for path in PAGES for line in command_lines(path.read_text(encoding="utf-8"))]


def test_the_docs_hold_command_lines_to_check():
    assert len(COMMAND_LINES) >= 20
    assert any(line.startswith("jaxrap train") for _, line in COMMAND_LINES)


@pytest.mark.parametrize(("path", "line"), COMMAND_LINES, ids=[f"{_page_id(p)}: {line[:60]}" for p, line in COMMAND_LINES])
def test_every_command_line_parses_with_the_real_parser(path, line, capsys):
    words = shlex.split(line)
    argv = ["tui", *words[2:]] if words[0] == "python" else words[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as error:
        assert error.code == 0, f"{_page_id(path)}: `{line}` does not parse: {capsys.readouterr().err.strip()}"


def test_a_wrong_command_line_would_fail():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--model", "m", "--no-such-flag"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--model", "m", "--top-k", "many"])


def test_the_line_reader_finds_commands_after_env_and_pipes():
    text = ("```bash\nXLA_FLAGS=--x=4 jaxrap train --config C \\\n  --set a=1   # why\n"
            "echo hi | jaxrap generate --model m --prompt $'J\\'ai\\n' 2> err.txt > out.txt\n"
            "ssh host --command \"cd jaxrap && jaxrap eval --model m\"\n```\n"
            "```python\njaxrap = 'not a shell line'\n```\n")
    assert command_lines(text) == [
        "jaxrap train --config C --set a=1", "jaxrap generate --model m --prompt X", "jaxrap eval --model m",
    ]


NAMED_CONFIGS = sorted({name for path in PAGES for name in re.findall(r"configs/[\w.-]+\.ya?ml", path.read_text(encoding="utf-8"))})


@pytest.mark.parametrize("name", NAMED_CONFIGS)
def test_every_config_file_the_docs_name_exists_and_loads(name):
    assert (ROOT / name).is_file(), f"{name} is named in the docs but does not exist"
    load_config(ROOT / name)


def test_every_subcommand_help_ends_with_an_existing_docs_page():
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(subcommands) == set(COMMANDS) == set(DOCS_PAGES)
    for name, subparser in subcommands.items():
        help_text = subparser.format_help().rstrip()
        page = DOCS_PAGES[name]
        assert help_text.endswith(f"Docs: {page}"), name
        assert (ROOT / page).is_file(), page
    assert "docs/" in parser.format_help()


def test_every_docs_page_is_linked_from_the_readme():
    readme_links = {target.partition("#")[0] for target in relative_links(ROOT / "README.md")}
    missing = [_page_id(page) for page in PAGES[1:] if _page_id(page) not in readme_links]
    assert not missing, f"README.md does not link {missing}"


def test_the_readme_stays_a_front_page():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_the_readme_sample_block_is_rendered_and_replaced_by_its_script():
    from scripts_under_test import load_script

    sample = load_script("readme_sample")
    command = sample.sample_command("runs/tiny_cpu")
    block = sample.render_block(command, "J'traîne au quartier\nun bar\n", "jaxrap: 2 of 2 bars met their targets\n")
    assert block.startswith(sample.START) and block.endswith(sample.END)
    assert command_lines(block) == [shlex.join([*command[:5], "X", *command[6:]])]  # the bash block parses
    assert "un bar\njaxrap: 2 of 2 bars met their targets\n```" in block
    readme = f"intro\n{sample.START}\nold\n{sample.END}\noutro\n"
    assert sample.replace_block(readme, block) == f"intro\n{block}\noutro\n"
    with pytest.raises(SystemExit, match="no sample markers"):
        sample.replace_block("no markers here", block)


def test_the_readme_carries_the_scripts_sample_of_the_quickstart_model():
    """The front page's sample is the script's block for the quickstart run, once: the command
    line is the script's own, so a hand edit of the command or a stray copy fails here."""
    from scripts_under_test import load_script

    sample = load_script("readme_sample")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(sample.START) == 1 and readme.count(sample.END) == 1
    block = readme[readme.index(sample.START):readme.index(sample.END)]
    assert f"```bash\n{sample.shell_line(sample.sample_command('runs/tiny_cpu'))}\n```" in block
    assert "bars met their targets" in block
