"""Per-song cleaning: raw Genius-style lyrics -> one bar per line, stanzas kept.

What a cleaned song looks like: one bar per line, stanzas separated by exactly one blank
line, no leading/trailing blank lines, no trailing newline. Genius section headers
(``[Couplet 1 : X]``, ``[Refrain]``, ``{Refrain} :``), repeat marks (``(x2)``) and stage
directions (``*rires*``) are not bars: they are removed (they still end a stanza), or kept
as uniform ``[...]`` marker lines with ``keep_headers`` (a stage direction as ``[*rires*]``).
Cleaning is idempotent: cleaned text, cleaned again with the same options, is unchanged.

Characters are normalised so that one sound is one spelling for the tokenizer:
- C1 control characters (U+0080-U+009F) are Windows-1252 bytes that were decoded as
  Latin-1 upstream (the real corpus has ``c\\x9cur`` for "cœur", ``l\\x92aube``): they are
  mapped back through cp1252.
- Unicode NFC (the corpus mixes precomposed and combining accents).
- Apostrophes ``’ ‘ ‚ ‛ ʼ ´ ` ′`` -> ``'``; doubled ones between letters (``L’'aube``,
  left by the mojibake) -> one.
- Double quotes ``“ ” „ ‟ ″`` and French guillemets ``« » ‹ ›`` -> ASCII ``"``. Why not keep
  « »: the corpus writes quotations with ``"`` about ten times more often (``"Stop"``),
  mixing both spreads one thing over two token sets, and ``"`` is a single byte-level token
  in every GPT-2 vocabulary. The French spacing inside guillemets (``« Stop »``) goes with
  them, so both styles become ``"Stop"``.
- ``…`` -> ``...``; no-break, thin and other exotic spaces -> a space; zero-width
  characters, soft hyphens and byte-order marks removed; runs of spaces collapsed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class CleanOptions:
    keep_headers: bool = False  # keep section headers as "[...]" marker lines instead of dropping them
    lowercase: bool = False  # lowercase everything (case is kept by default: it carries emphasis)


_CHARACTER_MAP = str.maketrans(
    {
        **dict.fromkeys("\u2019\u2018\u201a\u201b\u02bc\u00b4`\u2032", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\u2039\u203a", '"'),
        "\u2026": "...",
        **dict.fromkeys("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                        "\u2009\u200a\u202f\u205f\u3000\t\v\f", " "),
        **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad", None),
        **dict.fromkeys("\r\u2028\u2029", "\n"),
    }
)
_C1_CONTROLS = re.compile("[\u0080-\u009f]")
# French typography puts a (no-break) space inside guillemets; ASCII quotes take none.
_GUILLEMET_SPACES = re.compile(r"([«‹])[ \u00a0\u202f\u2009]+|[ \u00a0\u202f\u2009]+([»›])")
_DOUBLED_APOSTROPHE = re.compile(r"(?<=\w)'{2,}(?=\w)")
_SPACES = re.compile(r" {2,}")

# Genius page furniture that lands inside the lyrics text when a page is scraped.
_GENIUS_INSERTS = re.compile(
    r"You might also like|See [^\n]{1,80}? Live\s*Get tickets as low as \$\d+", re.IGNORECASE
)
_REMOVED = "\x00"  # stands where page furniture was cut out (a line break, never a blank line)
_EMBED_TAIL = re.compile(r"\s*\d*\s*Embed(?:Share URLCopyEmbedCopy)?\s*$")
# "12 ContributorsTranslationsEnglishTitre Lyrics", "Titre Lyrics", then an optional
# "... Read More" description teaser: the header block ends at the last such line.
_GENIUS_HEADER_END = re.compile(r"(?:^|\s)Lyrics$|Read More$")
_GENIUS_HEADER_SPAN = 8  # the header block sits within the first lines of a page
_BOILERPLATE_LINE = re.compile(
    r"^\d+\s*Contributors?\b"  # contributor count
    r"|^paroles\b.*genius\b"  # "Paroles rédigées et expliquées par la communauté RapGenius France"
    r"|^<?\s*img\s+src\s*="  # HTML image tags left as text
    r"|^</?[a-z][^>]*>$",
    re.IGNORECASE,
)
_LONE_NUMBER = re.compile(r"^\d+$")
# Genius annotation links flattened to markdown: "[bar](1767260)", or "bar](1767260)".
_ANNOTATION_LINK = re.compile(r"\[([^\]\n]*)\]\(\d+\)|\]\(\d+\)")

# A whole-line section header; the real corpus also has "{Refrain} :" and "{Couplet 1]".
_HEADER_LINE = re.compile(r"^[\[{]([^\[\]{}]*)[\]}]\s*:?$")
_HEADER_THEN_BAR = re.compile(r"^\[([^\[\]]*)\]\s*(\S.*)$")
_REPEAT_MARK = re.compile(r"^[\[({]?\s*((?:[x×]\s*\d+)|(?:\d+\s*[x×]))\s*[\])}]?$", re.IGNORECASE)
# Older transcriptions label sections without brackets: "Refrain :", "(Couplet 2)",
# "Couplet 1 (Oxmo) :", "Refrain (x2) :".
_SECTION_LABEL = re.compile(
    r"^\(?\s*((?:pr[ée][- ]?)?refrain|couplet|pont|intro|outro|hook|chorus|verse|bridge|break|interlude)"
    r"(?:\s*\d+)?(?:\s*\([^()]*\)|\s*[x×]\s*\d+)*\s*\)?\s*[:\-]?(?:\s*\([^()]*\))*\s*$",
    re.IGNORECASE,
)
_PARENTHESISED = re.compile(r"^\([^()]*\)$")
_STAGE_DIRECTION = re.compile(r"^\*([^*]+)\*$|^\[\*([^*]+)\*\]$")  # *rires*, or kept as a marker: [*rires*]
_HAS_WORD = re.compile(r"\w")
_MARKER_LINE = re.compile(r"^\[[^\]]*\]$")


def normalize_characters(text: str) -> str:
    """Encoding repairs, NFC, one spelling for apostrophes/quotes/spaces (see module doc)."""
    text = _C1_CONTROLS.sub(_cp1252_character, text)
    text = unicodedata.normalize("NFC", text)  # first: it turns some characters into mapped ones (U+1FFD -> ´)
    text = _GUILLEMET_SPACES.sub(lambda m: m.group(1) or m.group(2), text)
    text = text.translate(_CHARACTER_MAP)
    # Again: a removed character (the soft hyphen of e\u00ad\u0301) can leave a pair to compose.
    text = unicodedata.normalize("NFC", text)
    return _DOUBLED_APOSTROPHE.sub("'", text)


def _cp1252_character(match: re.Match) -> str:
    # Five C1 bytes have no cp1252 character (0x81, 0x8d, 0x8f, 0x90, 0x9d): drop them.
    return bytes([ord(match.group())]).decode("cp1252", errors="ignore")


def clean_lyrics(text: str, options: CleanOptions = CleanOptions()) -> str:
    """One song's raw lyrics -> cleaned text (may be empty when nothing lyrical is left)."""
    text = normalize_characters(text)
    text = _GENIUS_INSERTS.sub(_REMOVED, text)
    text = _ANNOTATION_LINK.sub(lambda m: m.group(1) or "", text)
    lines = []
    for line in text.split("\n"):
        pieces = [_SPACES.sub(" ", piece).strip() for piece in line.split(_REMOVED)]
        # What surrounded cut-out furniture stays, each piece on its own line; no blank line.
        lines.extend(pieces if len(pieces) == 1 else [piece for piece in pieces if piece])
    # The tail first: cutting it can leave a line ending in "Lyrics", which the header search sees.
    lines = _drop_page_header(_drop_embed_tail(lines))

    out: list[str] = []  # bars, "" for a stanza break, "[...]" markers
    for line in lines:
        markers, bar = _split_markers(line)
        for marker, starts_stanza in markers:
            if starts_stanza:
                out.append("")
            if options.keep_headers:
                out.append(f"[{marker}]")
        if bar == "":
            out.append("")
        elif bar is not None and _is_bar(bar):
            out.append(bar)
    cleaned = _join_stanzas(out)
    return cleaned.lower() if options.lowercase else cleaned


def _split_markers(line: str) -> tuple[list[tuple[str, bool]], str | None]:
    """The markers a line starts with, as (text, whether it starts a stanza), and the bar left
    after them: "" for a blank line, None for none. A header glued to a bar can hide another
    marker ("[Intro] (x2)", "[A] [B]"), which a second cleaning would find."""
    markers: list[tuple[str, bool]] = []
    bar: str | None = line
    while bar:
        marker, starts_stanza, rest = _split_marker(bar)
        if marker is None:
            break
        markers.append((marker, starts_stanza))
        bar = rest
    return markers, bar


def _split_marker(line: str) -> tuple[str | None, bool, str | None]:
    """(marker text or None, whether it starts a stanza, what is left of the line as a bar)."""
    # Repeat marks and stage directions annotate the stanza they sit in.
    match = _REPEAT_MARK.match(line)
    if match:
        return "x" + re.sub(r"\D", "", match.group(1)), False, None
    match = _STAGE_DIRECTION.match(line)
    if match:
        # Kept with its asterisks, so that a second cleaning reads it as a stage direction, not
        # as a section header that would open a stanza; a direction of brackets alone is noise.
        direction = _marker_text(match.group(1) or match.group(2))
        return (f"*{direction}*", False, None) if direction else (None, False, line)
    match = _HEADER_LINE.match(line)
    if match:
        return _marker_text(match.group(1)), True, None
    if _SECTION_LABEL.match(line):
        label = line[1:-1] if _PARENTHESISED.match(line) else line
        return _marker_text(label.rstrip(" :-")), True, None
    match = _HEADER_THEN_BAR.match(line)
    if match:
        return _marker_text(match.group(1)), True, match.group(2)
    return None, False, line


def _marker_text(text: str) -> str:
    """A marker's text on one line, without brackets or braces (kept, it reads back as the same marker)."""
    return " ".join(re.sub(r"[\[\]{}]", " ", text).split())


def _is_bar(line: str) -> bool:
    """A non-empty line without markers is a bar unless it is boilerplate, a number or wordless."""
    return not (_BOILERPLATE_LINE.search(line) or _LONE_NUMBER.match(line) or not _HAS_WORD.search(line))


def _drop_page_header(lines: list[str]) -> list[str]:
    """The lines after the page header: up to the last line ending in "Lyrics" or "Read More"
    among the first _GENIUS_HEADER_SPAN lines that hold a bar or such an ending. Lines cleaning
    drops anyway (numbers, section headers) do not count, and the window moves past each cut,
    so the cleaned text holds no header for a second cleaning to cut."""
    while True:
        window = [i for i, line in enumerate(lines) if _GENIUS_HEADER_END.search(line) or _holds_bar(line)]
        ends = [i for i in window[:_GENIUS_HEADER_SPAN] if _GENIUS_HEADER_END.search(lines[i])]
        if not ends:
            return lines
        lines = lines[ends[-1] + 1:]


def _holds_bar(line: str) -> bool:
    bar = _split_markers(line)[1]
    return _is_bar(bar) if bar else False


def _drop_embed_tail(lines: list[str]) -> list[str]:
    """The lines with the "…Embed" tail cut from the last one that holds a bar (lines cleaning
    drops anyway do not count), again while the new last one has one: cleaned text ends with
    no tail for a second cleaning to cut."""
    while True:
        holding = [i for i, line in enumerate(lines) if _holds_bar(line)]
        if not holding:
            return lines
        last = holding[-1]
        trimmed = _EMBED_TAIL.sub("", lines[last])
        if trimmed == lines[last]:
            return lines
        lines = [*lines[:last], trimmed, *lines[last + 1:]]


def _join_stanzas(lines: list[str]) -> str:
    """Collapse runs of stanza breaks into one blank line; no blank line at either end."""
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept)


def bars(text: str) -> list[str]:
    """The lines of a cleaned song that are bars (not blank, not "[...]" markers)."""
    return [line for line in text.split("\n") if line and not _MARKER_LINE.match(line)]


def clean_field(value: str) -> str:
    """A title or artist name: same character normalisation, on one line."""
    return " ".join(normalize_characters(value).split())
