"""French end rhymes: keys of single words, and groups in invented quatrains."""

from __future__ import annotations

import pytest

from jaxrap.phonetics.rhyme import bar_ending, last_word, last_word_span, rhyme_groups, rhyme_key

# Each set: line endings that rhyme, spelt differently (the spellings the module names).
RHYMING_SETS = [
    ("J'm'arrache", "tout le monde se cache,", "c'est ma tâche.", "j'ramène le cash"),  # aʃ
    ("l'eau", "trop beau", "il fait chaud", "sur le micro", "mon flow"),  # eau/au/o, silent t, -ow
    ("j'parlais", "mes couplets", "le quartier", "vous chantez", "la liberté", "j'ai marché"),  # é/ai/et/er/ez
    ("la mère", "la terre", "l'hiver", "les affaires", "à travers"),  # ɛʁ
    ("le temps", "les gens", "mon sang", "souvent", "maintenant", "les enfants"),  # an/en/am, silent t/g/s
    ("la main", "demain", "le chemin", "plein", "rien", "au loin", "chacun"),  # in/ain/ein/ien/oin/un
    ("les rues", "j'ai vu", "perdu", "têtue"),  # u, mute -es/-e
    ("c'est fou", "partout", "debout", "les coups", "beaucoup"),  # ou, silent t/p
    ("moi", "les rois", "ma voix", "le froid", "la joie", "les doigts"),  # oi
    ("ils chantent", "la pente", "l'attente"),  # mute -ent, t heard before a mute e
    ("la fille", "ça brille", "ma famille"),  # ill = ij
    ("la rose", "une chose", "j'ose"),  # s between vowels = z
    ("le cœur", "la peur", "les dealers", "à toute heure"),  # œ/eu, English -er
]
NON_RHYMES = [
    ("J'm'arrache", "là"),  # assonance only
    ("la mère", "parler"),  # closed ɛʁ vs open é
    ("le temps", "la main"),  # ɑ̃ vs ɛ̃
    ("la lune", "chacun"),  # oral yn vs nasal
    ("ils chantent", "le chant"),  # t heard vs silent
    ("la rose", "le gosse"),  # z vs s
    ("ma voix", "la boîte"),
    ("la fille", "la ville"),  # ij vs il
    ("le bus", "perdus"),  # sounded s vs silent plural
]


@pytest.mark.parametrize("endings", RHYMING_SETS, ids=lambda endings: endings[0])
def test_spellings_of_one_sound_share_a_key(endings):
    keys = {ending: rhyme_key(ending) for ending in endings}
    assert len(set(keys.values())) == 1, keys
    assert None not in keys.values()


@pytest.mark.parametrize("first,second", NON_RHYMES)
def test_different_endings_get_different_keys(first, second):
    assert rhyme_key(first) != rhyme_key(second)


@pytest.mark.parametrize(
    "line,key",
    [
        ("J'm'arrache, j'm'arrache", "aʃ"),
        ("la mère", "ɛʁ"),
        ("chanter", "e"),
        ("le temps", "ɑ̃"),
        ("la chambre", "ɑ̃bʁ"),
        ("chante", "ɑ̃t"),
        ("le chant", "ɑ̃"),
        ("un moment", "ɑ̃"),
        ("il ment", "ɑ̃"),  # "-ment" with nothing before it
        ("ils aiment", "ɛm"),
        ("aujourd'hui", "i"),
        ("dis-le", "ø"),  # a stressed final schwa is said ø: "dis-le" rhymes with "deux"
        ("la street", "it"),
    ],
)
def test_known_keys(line, key):
    assert rhyme_key(line) == key


@pytest.mark.parametrize("line", ["", "   ", "[Refrain]", "🔥🔥 !", "pff", "j'"])
def test_lines_without_a_word_that_can_rhyme_have_no_key(line):
    assert rhyme_key(line) is None


def test_numbers_are_spelled_out_before_their_key():
    assert rhyme_key("J'en ai 1000 !") == rhyme_key("la ville") == "il"
    assert rhyme_key("on est 2") == rhyme_key("les yeux") == "ø"


def test_last_word_ignores_punctuation_apostrophes_and_emojis():
    assert last_word("Qu'est-ce que t'attends ? La pluie tombe, j'écris ! 🎤") == "écris"
    assert last_word("« Ça va ? » qu'il m'demande") == "demande"
    assert last_word("L’été brûle le béton…") == "béton"
    line = "Mon cœur bat, j'ai l'âme en CHANTIER 🔥"
    start, end = last_word_span(line)
    assert line[start:end] == "CHANTIER" and last_word(line) == "chantier"


def test_groups_in_an_aabb_quatrain():
    quatrain = [
        "Je gratte mon cahier quand la ville s'endort",
        "Les lampadaires brillent, j'écris encore",
        "Mon frère m'a dit de viser la lune",
        "Mais on a grandi sans voir la fortune",
    ]
    assert rhyme_groups(quatrain) == [0, 0, 1, 1]


def test_groups_in_an_abab_quatrain_across_a_stanza_break():
    lines = [
        "J'ai traîné dans le hall jusqu'à l'aube",
        "Le béton m'a appris la patience",
        "",
        "On rêvait de partir au bout du globe",
        "Le bitume m'a volé mon enfance",
    ]
    assert rhyme_groups(lines) == [0, 1, None, 0, 1]


def test_lines_without_a_nearby_partner_have_no_group():
    lines = ["Je marche seul", "Dans la nuit noire", "Le ciel est gris", "Rien à voir", "La pluie tombe"]
    assert rhyme_groups(lines) == [None, 0, None, 0, None]


def test_window_limits_how_far_a_rhyme_reaches():
    lines = ["la mère", "un", "deux", "trois", "quatre", "cinq", "la terre"]
    assert rhyme_groups(lines, window=4)[0] is None
    assert rhyme_groups(lines, window=6)[0] == rhyme_groups(lines, window=6)[6] == 0


def test_keys_come_from_the_lexicon_where_it_knows_the_word():
    from jaxrap.phonetics.pronounce import pronounce
    from jaxrap.phonetics.spelling import spelling_rhyme_key

    assert rhyme_key("on est tous") == "us" != spelling_rhyme_key("tous")  # Lexique's reading of "tous"
    assert rhyme_key("c'est le cœur") == "øʁ" and pronounce("cœur").source == "lexicon"
    assert rhyme_key("mon fils") == "is" and rhyme_key("il est") == "e"
    assert rhyme_key("wesh") == "ɛʃ" and pronounce("wesh").source == "rules"  # slang: the rules


def test_bar_vowels_and_last_spoken_word():
    from jaxrap.phonetics.rhyme import bar_vowels, last_spoken_word

    assert bar_vowels("Le temps passe") == ("ə", "ɑ̃", "a")
    assert bar_vowels("J'ai 2 euros") == ("e", "ø", "ø", "o")
    assert bar_vowels("[Refrain]") == () and last_spoken_word("[Refrain]") is None
    assert last_spoken_word("J'm'arrache, j'").text == "arrache"  # an elided j' ends no bar
    assert last_spoken_word("J'en ai 1000 !").text == "mille"


# --- rhymes of several vowels, and the function words that carry none ----------------------

@pytest.mark.parametrize(
    "first,second,vowels",
    [
        ("toute ma vie", "je donne mon avis", 2),  # a-i across a word boundary and inside a word
        ("la chambre", "ça cambre", 2),  # a-ɑ̃bʁ: the last vowel keeps its consonants
        ("tu fais du bruit", "tu fuis", 2),  # y-i: the glide of "fuis" is no vowel
        ("t'as vu la nuit", "il a vu l'avis", 3),  # y-a-i over three words and two
    ],
)
def test_bars_ending_on_the_same_vowels_share_a_key_of_that_many(first, second, vowels):
    assert rhyme_key(first, vowels) == rhyme_key(second, vowels) is not None


def test_a_key_of_n_vowels_is_the_vowels_before_the_last_then_its_key():
    assert rhyme_key("ma vie", 2) == "a-i" == rhyme_key("l'avis", 2)
    assert rhyme_key("la chambre", 2) == "a-ɑ̃bʁ"
    assert rhyme_key("Paris la nuit", 3) == "i-a-i"
    assert rhyme_key("la maladie", 3) == "a-a-i" != rhyme_key("la comédie", 3)  # o-e-i
    assert rhyme_key("ma vie", 1) == rhyme_key("ma vie") == "i"
    assert rhyme_key("vie", 2) is None and rhyme_key("ma vie", 3) is None  # fewer vowels than asked
    assert rhyme_key("[Refrain]", 2) is None and rhyme_key("", 2) is None


def test_function_words_carry_no_rhyme_unless_a_hyphen_stresses_them():
    for line in ("j'sais pas c'que t'attends de", "toute ma vie et", "on roule dans", "c'est mon"):
        ending = bar_ending(line)
        assert ending.function_word and ending.key is not None and ending.rhyme is None, line
    for line in ("dis-le", "vas-y", "prends-en", "Que dit-il", "c'est pour moi", "à la vie", "le son", "des sous"):
        ending = bar_ending(line)
        assert not ending.function_word and ending.rhyme == ending.key is not None, line
    assert bar_ending("dis-le", 2) == ("i-ø", "le", False)
    assert bar_ending("🔥") == (None, None, False)
