"""Per-song cleaning: headers, Genius boilerplate, characters, stanzas (jaxrap.data.clean)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings, strategies as st

from jaxrap.data.clean import CleanOptions, bars, clean_field, clean_lyrics, normalize_characters

KEEP = CleanOptions(keep_headers=True)


def test_bars_stay_on_their_own_lines_and_stanzas_collapse_to_one_blank_line():
    raw = "\n\n  Première ligne du quartier  \nDeuxième ligne sous la lune\n\n\n\nTroisième ligne, nouvelle strophe\n\n"
    assert clean_lyrics(raw) == (
        "Première ligne du quartier\nDeuxième ligne sous la lune\n\nTroisième ligne, nouvelle strophe"
    )


@pytest.mark.parametrize(
    "header",
    ["[Couplet 1 : MC Inventé]", "[Refrain]", "[Intro]", "[Pré-refrain : Les Deux]", "[Outro]",
     "{Refrain} :", "{Couplet 2]", "Refrain :", "(Couplet 1)", "Couplet 2 (MC Inventé) :", "REFRAIN"],
)
def test_section_headers_are_removed_and_end_a_stanza(header):
    raw = f"On roule la nuit sur le béton\n{header}\nLe micro chauffe, j'gratte la page"
    assert clean_lyrics(raw) == "On roule la nuit sur le béton\n\nLe micro chauffe, j'gratte la page"


def test_headers_kept_as_uniform_markers_with_the_option():
    raw = "[Intro : MC Inventé]\nYo yo\n{Refrain} :\nOn tient la ville\n(x2)\n*rires*\nRefrain (x2) :\nEncore"
    assert clean_lyrics(raw, KEEP) == (
        "[Intro : MC Inventé]\nYo yo\n\n[Refrain]\nOn tient la ville\n[x2]\n[*rires*]\n\n[Refrain (x2)]\nEncore"
    )
    assert bars(clean_lyrics(raw, KEEP)) == ["Yo yo", "On tient la ville", "Encore"]


def test_repeat_marks_and_stage_directions_are_not_bars_and_do_not_split_a_stanza():
    raw = "On tient la ville\nx2\n[×4]\n*bruit de métro*\nLa ville nous tient"
    assert clean_lyrics(raw) == "On tient la ville\nLa ville nous tient"


def test_header_glued_to_a_bar_keeps_the_bar():
    assert clean_lyrics("Fin du couplet\n[Refrain] On tient la ville") == "Fin du couplet\n\nOn tient la ville"


def test_genius_page_boilerplate_is_removed():
    raw = (
        "12 ContributorsTranslationsEnglishMC Inventé - Le Titre Lyrics\n"
        "[Couplet 1]\n"
        "J'écris dans le hall, l'encre coule\n"
        "See MC Inventé LiveGet tickets as low as $45You might also like\n"
        "Le tempo cogne comme la pluie\n"
        "You might also like[Refrain]\n"
        "On veille tard, on rêve fort\n"
        "3\n"
        "Paroles rédigées et expliquées par la communauté RapGenius France\n"
        'Img src="https://images.example/banner.gif"\n'
        "...\n"
        "Dernière rime avant l'aube42Embed"
    )
    assert clean_lyrics(raw) == (
        "J'écris dans le hall, l'encre coule\nLe tempo cogne comme la pluie\n\n"
        "On veille tard, on rêve fort\nDernière rime avant l'aube"
    )


def test_lyrics_words_inside_bars_are_not_mistaken_for_boilerplate():
    raw = "Lyrics et beats, on mélange tout\nJ'ai 93 problèmes et la rime en est un\nEmbed dans le son"
    assert clean_lyrics(raw) == raw


def test_flattened_annotation_links_keep_their_text():
    raw = "[Je garde l'espoir qui m'habite](1234567)\nEt le silence m'habite](7654321)"
    assert clean_lyrics(raw) == "Je garde l'espoir qui m'habite\nEt le silence m'habite"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("J\u2019avance, t\u2018es là, l\u02bcaube, j\u00b4rêve, c`est", "J'avance, t'es là, l'aube, j'rêve, c'est"),
        ("Il m'a dit « Stop » puis «\u00a0Encore\u00a0»", 'Il m\'a dit "Stop" puis "Encore"'),
        ("\u201cGuillemets anglais\u201d et \u201eallemands\u201f", '"Guillemets anglais" et "allemands"'),
        ("Et puis\u2026 rien", "Et puis... rien"),
        ("Un\u2005espace\u205fbizarre\u00a0ici\u200b, là\ufeff", "Un espace bizarre ici, là"),
        ("L\x92'aube, mon c\x9cur, d\x80", "L'aube, mon cœur, d€"),  # cp1252 bytes read as Latin-1
        ("De\u0301ja\u0300 vu", "Déjà vu"),
    ],
)
def test_characters_are_normalised(raw, expected):
    assert clean_lyrics(raw) == expected


def test_output_is_nfc_without_typographic_quotes():
    text = normalize_characters("E\u0301te\u0301 \u00ab\u202fcit\u00e9\u202f\u00bb l\u2019hiver\u2026")
    assert unicodedata.is_normalized("NFC", text)
    assert not set(text) & set("\u2019\u00ab\u00bb\u2026\u202f")


def test_case_is_kept_by_default_and_lowercased_on_request():
    raw = "[Refrain]\nLe QUARTIER crie, Paris écoute"
    assert clean_lyrics(raw) == "Le QUARTIER crie, Paris écoute"
    assert clean_lyrics(raw, CleanOptions(keep_headers=True, lowercase=True)) == "[refrain]\nle quartier crie, paris écoute"


def test_a_song_of_only_boilerplate_cleans_to_nothing():
    assert clean_lyrics("[Instrumental]\n\n...\n12\nYou might also like\n5Embed") == ""


def test_clean_field_puts_titles_on_one_normalised_line():
    assert clean_field("  L\u2019aube\u00a0 (Remix)\n") == "L'aube (Remix)"


# --- properties (Hypothesis): any string a scraped page or a user's file can hold ----------

# What the cleaner acts on (accents, the quotes, apostrophes and spaces it rewrites, mojibake
# bytes, combining marks, brackets, newlines), mixed with any other character.
_TRICKY = "aeé e\u0301ÉœŒ'’‘´«»“”…\u00a0\u202f\u200b\u00ad\ufeff\x9c\x92\x81\r\t\n [](){}*:-x×0123456789"
_LINES = ["[Refrain]", "[Couplet 1 : X]", "{Refrain} :", "Refrain :", "(Couplet 2)", "(x2)", "*rires*", "x3",
          "[Intro] Yo", "You might also like", "12 Contributors", "Titre Lyrics", "42Embed", "...", "3", ""]
_characters = st.one_of(st.sampled_from(_TRICKY), st.characters())
_piece = st.one_of(st.sampled_from(_LINES), st.text(_characters, max_size=20))
_line = st.lists(_piece, min_size=1, max_size=3).map(" ".join)  # "[Intro] (x2)", "bar Lyrics", ...
lyrics_text = st.one_of(st.text(_characters, max_size=200), st.lists(_line, max_size=12).map("\n".join))
clean_options = st.builds(CleanOptions, keep_headers=st.booleans(), lowercase=st.booleans())


@settings(max_examples=400)
@given(lyrics_text, clean_options)
@example("e\u00ad\u0301té", CleanOptions())  # was left in NFD
def test_any_text_cleans_to_the_documented_shape(text, options):
    cleaned = clean_lyrics(text, options)
    lines = cleaned.split("\n")
    assert not cleaned.startswith("\n") and not cleaned.endswith("\n") and "\n\n\n" not in cleaned
    assert all(line == line.strip() and "  " not in line for line in lines)
    assert not set(cleaned) & set("\r’‘´«»“”…\u00a0\u202f\u200b\u00ad\ufeff\x9c\x92")
    assert cleaned == unicodedata.normalize("NFC", cleaned)


@settings(max_examples=400)
@given(lyrics_text, clean_options)
# What the properties found (each fixed in its own commit):
@example("0\n0\n0\n0\n0\n0\n0\n0\nLyrics", CleanOptions())  # header window counted dropped lines
@example("Embed\n0", CleanOptions())  # Embed tail looked at a dropped line
@example("a\nfoo Lyrics 2Embed", CleanOptions())  # cutting the tail exposed a header
@example("e\u00ad\u0301té", CleanOptions())  # a removed soft hyphen left NFD
@example("[][0]", CleanOptions())  # a header glued to another header
@example("*[*", KEEP)  # brackets inside a kept marker
@example("bar\n*rires*\nbar", KEEP)  # a kept stage direction read back as a header
def test_cleaning_is_idempotent(text, options):
    cleaned = clean_lyrics(text, options)
    assert clean_lyrics(cleaned, options) == cleaned


@settings(max_examples=200)
@given(st.text(_characters, max_size=60))
def test_clean_field_is_one_stripped_line_and_idempotent(value):
    field = clean_field(value)
    assert "\n" not in field and field == field.strip() and "  " not in field
    assert clean_field(field) == field
