"""The figures of the README's "Syllables and rhyme" section, from a prepared corpus.

    python scripts/phonetics_report.py --data data/rap --tokenizer runs/tiny_cpu/tokenizer [--tokenizer DIR ...]
        [--sentencepiece 8000]

Prints:

1. the spelling rules' agreement with Lexique 3.83 (``jaxrap.phonetics.agreement``) on its
   10,000 most frequent word forms (the rules were tuned on them) and on ranks 10,001-30,000
   (held out);
2. the lexicon's load time in a fresh process, beside the time to import ``jaxrap.tui.app`` in
   another (the reference: what ``python tui.py`` pays before its window appears);
3. for each ``--tokenizer`` (and, with ``--sentencepiece N``, a SentencePiece-style BPE of N
   entries trained on the corpus' train split, Llama's layout: ``train_sentencepiece_tokenizer``):
   the per-token tables' build time, and their agreement with the word-level counter and rhyme
   key on the split's bars (``token_agreement``);
4. per artist, on the split's songs (``--split``, default validation): bars, mean syllables per
   bar, the share of consecutive bars that rhyme (pairs of identical bars skipped, as
   ``jaxrap eval``'s rhyme rate) and the multi-syllable rhyme density (``flow_metrics``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

from jaxrap.data.corpus import load_corpus
from jaxrap.data.tokenizer import load_tokenizer, train_sentencepiece_tokenizer
from jaxrap.evaluate.flow_metrics import lyric_bars, rhyme_density, syllable_stats
from jaxrap.evaluate.lyric_metrics import rhyming_pairs
from jaxrap.phonetics.agreement import lexicon_agreement
from jaxrap.phonetics.token_tables import token_agreement, token_tables


def fresh_process_seconds(code: str) -> float:
    """Wall time of ``code`` in a new interpreter, as it reports it (imports included)."""
    timed = f"import time; _t = time.perf_counter(); {code}; print(time.perf_counter() - _t)"
    return float(subprocess.run([sys.executable, "-c", timed], check=True, capture_output=True, text=True).stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a prepared corpus (jaxrap prepare)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--tokenizer", action="append", default=[], help="tokenizer directory (repeatable)")
    parser.add_argument("--sentencepiece", type=int, metavar="N", help="also a SentencePiece-style BPE of N entries trained on the corpus")
    args = parser.parse_args(argv)
    if args.sentencepiece:
        directory = tempfile.mkdtemp(prefix="jaxrap-sentencepiece-")
        train_sentencepiece_tokenizer(args.data, args.sentencepiece, directory)
        args.tokenizer.append(directory)

    print("Spelling rules against Lexique 3.83:")
    print(f"  top 10,000 (tuned on): {lexicon_agreement().summary()}")
    print(f"  ranks 10,001-30,000 (held out): {lexicon_agreement(20_000, skip=10_000).summary()}")

    load = [fresh_process_seconds("from jaxrap.phonetics.lexicon import load_lexicon; load_lexicon()") for _ in range(3)]
    tui = [fresh_process_seconds("import jaxrap.tui.app") for _ in range(3)]
    print(f"Lexicon load, fresh process (import included), best of 3: {min(load):.3f} s;"
          f" import jaxrap.tui.app: {min(tui):.3f} s")

    songs = load_corpus(args.data)[args.split]
    bars = [bar for text in songs["text"] for bar in lyric_bars(text)]
    for directory in args.tokenizer:
        tokenizer = load_tokenizer(directory)
        start = time.perf_counter()
        token_tables(tokenizer)
        built = time.perf_counter() - start
        figures = token_agreement(tokenizer, bars)
        print(f"Token tables {directory} ({len(tokenizer):,} tokens): built in {built:.2f} s; on {figures.bars:,} bars"
              f" token syllables within ±1 {figures.within1:.1%}, ±2 {figures.within2:.1%}, mean difference"
              f" {figures.mean_difference:+.2f}; last word's rhyme class = its key on {figures.rhyme_class_match:.1%};"
              f" the token-level key of 2 vowels = the word-level one on {figures.two_vowel_match:.1%}")

    by_artist: dict[str, list[str]] = defaultdict(list)
    for text, artist in zip(songs["text"], songs["artist"]):
        by_artist[artist].append(text)
    print(f"\n{args.split} songs | songs | bars | syllables/bar | consecutive bars rhyming | rhyme density")
    for artist, texts in sorted(by_artist.items()) + [("all", list(songs["text"]))]:
        artist_bars = [lyric_bars(text) for text in texts]
        stats = sum((syllable_stats(b) for b in artist_bars), syllable_stats([]))
        density = sum((rhyme_density(b) for b in artist_bars), rhyme_density([]))
        rhyming, pairs = map(sum, zip(*(rhyming_pairs(text) for text in texts)))
        print(f"{artist} | {len(texts)} | {stats.bars:,} | {stats.mean:.1f} | {rhyming / pairs:.1%} | {density.density:.2f}")


if __name__ == "__main__":
    main()
