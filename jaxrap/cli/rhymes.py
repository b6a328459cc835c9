"""`jaxrap rhymes WORD`: the rhyme finder (``jaxrap.phonetics.rhyme_finder``) on the command line.

stdout: the key looked up, then one line per syllable count, ``N syllables: word, word, ...``,
the most frequent words first. No model is loaded; the corpus (``--data``) adds the words it
uses that Lexique lacks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxrap.errors import JaxrapError

QUICKSTART_CORPUS = Path("data/rap")  # where the README's quickstart prepares its corpus
DEFAULT_LIMIT = 20  # words printed per syllable count


def register(subparsers: argparse._SubParsersAction) -> None:
    from jaxrap.phonetics.sounds import MAX_RHYME_VOWELS  # constants only: the finder loads in run

    parser = subparsers.add_parser(
        "rhymes",
        help="words that rhyme with a word on its last N vowels, most frequent first",
        description="Print the words (Lexique 3.83's, and a corpus's that Lexique lacks) whose last N vowel sounds,"
        " with the consonants after the last, are those WORD ends on: grouped by spoken syllables, the most frequent"
        " first; never WORD itself, nor a function word (de, que, le...), which carries no rhyme. WORD may be several"
        " words: 'ma vie' ends on the vowels a-i, like 'l'avis'.",
    )
    parser.add_argument("word", metavar="WORD", help="the word (or the end of a bar) to rhyme with")
    parser.add_argument("--vowels", type=int, default=1, metavar="N",
                        help=f"rhyme on the last N vowels, 1..{MAX_RHYME_VOWELS} (default 1)")
    parser.add_argument("--syllables", type=int, metavar="S", help="only words of S spoken syllables (default: all)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="K",
                        help=f"at most K words per syllable count (default {DEFAULT_LIMIT})")
    corpus = parser.add_mutually_exclusive_group()
    corpus.add_argument("--data", type=Path, metavar="DIR",
                        help="a prepared corpus whose train split's words that Lexique lacks are listed too (those"
                        f" said a few times; default: {QUICKSTART_CORPUS} when it holds one)")
    corpus.add_argument("--lexicon-only", action="store_true", help="list Lexique's words only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jaxrap.data.corpus import corpus_word_counts, is_corpus
    from jaxrap.data.tokenizer import require_unicode
    from jaxrap.phonetics.rhyme_finder import CorpusWords, find_rhymes

    if not args.word.strip():
        raise JaxrapError("WORD is empty: give a word to rhyme with, e.g. 'nuit'")
    corpus = args.data
    if corpus is not None and not is_corpus(corpus):
        raise JaxrapError(f"--data {corpus}: not a prepared corpus; make one with `jaxrap prepare` or drop --data")
    if corpus is None and not args.lexicon_only and is_corpus(QUICKSTART_CORPUS):
        corpus = QUICKSTART_CORPUS
    words = None if corpus is None else CorpusWords(corpus_word_counts(corpus))
    rhymes = find_rhymes(require_unicode(args.word), args.vowels, args.syllables, args.limit, words)
    print(f"{rhymes.key} ({args.vowels} vowel{'' if args.vowels == 1 else 's'})")
    for group in rhymes.groups:
        print(f"{group.syllables} syllable{'' if group.syllables == 1 else 's'}: {', '.join(w.word for w in group.words)}")
    if not rhymes.groups:
        print(f"jaxrap: no word found that rhymes with {args.word!r} on '{rhymes.key}'", file=sys.stderr)
    return 0
