"""Rhyme and flow benchmark: the songs' own bars against unconstrained sampling, each lever of the
bar controls alone and both (README, "Rhyme and flow"), on one model.

    python scripts/bench_flow.py --model runs/tiny_cpu_900 --data data/rap --json flow.json

Every setting writes ``--samples-per-prompt`` samples of ``--bars`` bars after each of the first
bars of validation songs that ``jaxrap eval --samples`` uses (``evaluate.samples``), with one seed
for all: unconstrained sampling (the shipped preset, ``SamplingParams()``), steering alone
(``candidates`` 1, no redraw), candidates alone (``steering`` 0) and both, over the grid of
``--candidates`` x ``--steering`` x ``--redraws`` x ``--rhyme-vowels`` (multi-syllable rhymes: a
pair rhymes on its last N vowels). The songs' own next ``--bars`` bars are the reference row.
Settings take turns prompt by prompt, so a busy machine slows them alike. For each (the flow
metrics are ``evaluate.flow_metrics``', the others ``jaxrap eval``'s):

- scheme accuracy: share of the bar pairs the scheme says rhyme that do (the prompt's bar is the
  first bar of the scheme and sets its letter's sound; a pair ending on the same word, or a bar
  ending on a function word, is a miss), on the setting's N vowels (1 for the songs and
  unconstrained sampling), with its 95% Wilson interval (pairs of one text are not
  independent: a little optimistic), and on every N of the grid;
- rhyme density (``flow_metrics.rhyme_density``, the text's bars) and the rhyme length of the
  scheme's pairs: the vowels the two bars of a pair share at their ends, averaged over the pairs;
- the share of bars ending on an unstressed function word (``flow_metrics.function_word_endings``);
- syllables: share of bars within ±2 and ±1 of the target, mean per bar (``count_syllables``);
- sample perplexity: the model's own perplexity of the texts (temperature 1, no filters);
- distinct-2, loop rate (``lyric_metrics``), longest run of words copied from the train split
  (mean and max, ``memorisation``);
- time per bar: generation wall time over the bars written, and its ratio to unconstrained
  sampling's (compilation excluded: each setting runs once per prompt length bucket first);
- for the bar controls, the share of bars the sampler itself reports as met, candidates drawn per
  bar and the share of bars that needed a redraw.

``choose_defaults`` picks, among the settings with both levers on one vowel that meet issue 10's
targets (``meets_targets``), preferably with the accuracies' intervals above them, the one with
the fewest bars the sampler reports as misses, then the fastest; the README's defaults come from
it. Settings on several vowels are held to issue 20's targets (``meets_vowel_targets``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

from jaxrap.errors import JaxrapError
from jaxrap.sample.params import SamplingParams

SONGS, UNCONSTRAINED = "songs' own bars", "unconstrained"
# The targets for the default controls.
SCHEME_TARGET, SYLLABLE_TARGET, TIME_RATIO_TARGET, PERPLEXITY_SLACK = 0.90, 0.90, 4.0, 1.25
# Issue 20's targets for rhymes of several vowels (docs/rhymes.md).
VOWEL_SCHEME_TARGET, VOWEL_DENSITY_TARGET, VOWEL_TIME_RATIO_TARGET = 0.80, 1.8, 5.0


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    params: SamplingParams | None  # None: the songs' own bars
    lever: str  # "songs", "none", "steering", "candidates" or "both"

    @property
    def vowels(self) -> int:
        """The vowels a rhyme is scored on: the setting's, 1 for the songs and unconstrained sampling."""
        return 1 if self.params is None or not self.params.bar_controls else self.params.rhyme_vowels


def settings(args: argparse.Namespace) -> list[Setting]:
    """The songs, unconstrained sampling, then each grid point named by the levers it uses."""
    base = SamplingParams(
        seed=args.seed, num_samples=args.samples_per_prompt, max_new_tokens=args.max_new_tokens, max_bars=args.bars
    )
    bars = base.replace(rhyme_scheme=args.scheme, syllables=args.syllables, syllable_tolerance=args.tolerance)
    out = [Setting(SONGS, None, "songs"), Setting(UNCONSTRAINED, base, "none")]
    grid = itertools.product(args.candidates, args.steering, args.redraws, args.rhyme_vowels)
    for candidates, steering, redraws, vowels in grid:
        if candidates == 1 and steering == 0:
            continue  # no lever
        if candidates == 1:
            name, lever, redraws = f"steering {steering:g}", "steering", 0
        elif steering == 0:
            name, lever = f"candidates {candidates}, redraws {redraws}", "candidates"
        else:
            name, lever = f"steering {steering:g} + candidates {candidates}, redraws {redraws}", "both"
        name += f", {vowels} vowels" if vowels > 1 else ""
        params = bars.replace(candidates=candidates, steering=float(steering), redraws=redraws, rhyme_vowels=vowels)
        setting = Setting(name, params, lever)
        if setting not in out:
            out.append(setting)
    return out


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    from scipy.stats import binomtest

    if not trials:
        return 0.0, 1.0
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def pair_rhyme_length(bars: Sequence[str], scheme: str, first: int) -> tuple[int, int]:
    """(vowels shared at their ends, summed; pairs) over the pairs ``scheme`` says rhyme whose later
    bar comes at ``first`` or after: how long the rhymes the scheme asks for are."""
    from jaxrap.phonetics.rhyme import bar_vowels
    from jaxrap.phonetics.scheme import parse_rhyme_scheme

    vowels = [bar_vowels(bar) for bar in bars]
    members: dict[int, list[int]] = {}
    for bar, group in enumerate(parse_rhyme_scheme(scheme).groups(len(bars))):
        if group is not None:
            members.setdefault(group, []).append(bar)
    total = pairs = 0
    for group in members.values():
        for position, later in enumerate(group):
            for earlier in group[:position] if later >= first else ():
                run = 0
                while run < min(len(vowels[later]), len(vowels[earlier])) and vowels[later][-1 - run] == vowels[earlier][-1 - run]:
                    run += 1
                total, pairs = total + run, pairs + 1
    return total, pairs


def measure(generator, scorer, index, prompts, texts: list[list[str]], args: argparse.Namespace, vowels: int = 1) -> dict:
    """Every metric of the module docstring for ``texts[i]``, written after ``prompts[i]``;
    scheme accuracy on ``vowels`` vowels (and on each of ``args.rhyme_vowels``)."""
    from jaxrap.evaluate.flow_metrics import (
        FunctionEndings,
        RhymeDensity,
        SchemeScore,
        SyllableStats,
        function_word_endings,
        lyric_bars,
        rhyme_density,
        scheme_accuracy,
        syllable_stats,
    )
    from jaxrap.evaluate.lyric_metrics import lyric_stats
    from jaxrap.evaluate.memorisation import memorisation_stats
    from jaxrap.evaluate.samples import continuation_perplexity

    counts = sorted({vowels, *args.rhyme_vowels})
    schemes = dict.fromkeys(counts, SchemeScore(0, 0))
    syllables, density, endings = SyllableStats(0, 0, 0, 0), RhymeDensity(0, 0), FunctionEndings(0, 0)
    shared = pairs = 0
    for prompt, prompt_texts in zip(prompts, texts, strict=True):
        before = lyric_bars(prompt.prompt)
        for text in prompt_texts:
            bars = lyric_bars(text)
            for count in counts:
                schemes[count] += scheme_accuracy(before + bars, args.scheme, first=len(before), vowels=count)
            syllables += syllable_stats(bars, args.syllables)
            density += rhyme_density(bars)
            endings += function_word_endings(bars)
            run, scored = pair_rhyme_length(before + bars, args.scheme, len(before))
            shared, pairs = shared + run, pairs + scored
    scheme = schemes[vowels]
    flat = [text for prompt_texts in texts for text in prompt_texts]
    stats, copied = lyric_stats(flat), memorisation_stats(index, flat)
    return {
        "texts": len(flat),
        "bars": syllables.bars,
        "vowels": vowels,
        "scheme_accuracy": scheme.accuracy,
        "scheme_interval": wilson(scheme.hits, scheme.pairs),
        "scheme_by_vowels": {count: score.accuracy for count, score in schemes.items()},
        "pairs": scheme.pairs,
        "rhyme_density": density.density,
        "pair_rhyme_length": shared / pairs if pairs else 0.0,
        "function_word_share": endings.share,
        "within2": syllables.share_within2,
        "within2_interval": wilson(syllables.within2, syllables.bars),
        "within1": syllables.share_within1,
        "mean_syllables": syllables.mean,
        "sample_perplexity": continuation_perplexity(scorer, generator, prompts, texts).perplexity,
        "distinct2": stats.distinct2,
        "loop_rate": stats.loop_rate,
        "mean_copied_run": copied.mean_longest_run,
        "max_copied_run": copied.max_longest_run,
    }


def perplexity_gap(perplexity: float, songs: float) -> float:
    """|log(perplexity / the songs')|: how far from as likely, to the model, as the songs."""
    return abs(math.log(perplexity / songs))


def meets_targets(row: dict, unconstrained: dict, songs: dict) -> dict[str, bool]:
    """The issue's targets, one by one: scheme accuracy and syllables within ±2 at 90% or more,
    time per bar at most 4x unconstrained sampling's, sample perplexity no farther (in log ratio)
    from the songs' than unconstrained sampling's plus 25%, memorisation (mean longest copied
    run) no higher than unconstrained sampling's."""
    reference = songs["sample_perplexity"]
    return {
        "scheme": row["scheme_accuracy"] >= SCHEME_TARGET,
        "syllables": row["within2"] >= SYLLABLE_TARGET,
        "time": row["time_ratio"] <= TIME_RATIO_TARGET,
        "perplexity": perplexity_gap(row["sample_perplexity"], reference)
        <= perplexity_gap(unconstrained["sample_perplexity"], reference) + math.log(PERPLEXITY_SLACK),
        "memorisation": row["mean_copied_run"] <= unconstrained["mean_copied_run"],
    }


def meets_vowel_targets(row: dict, unconstrained: dict, songs: dict) -> dict[str, bool]:
    """Issue 20's targets for a rhyme of several vowels: scheme accuracy (on its vowels) of 80% or
    more, rhyme density of 1.8 or more, time per bar at most 5x unconstrained sampling's, sample
    perplexity as ``meets_targets``, and no more bars ending on a function word than unconstrained
    sampling's."""
    reference = songs["sample_perplexity"]
    return {
        "scheme": row["scheme_accuracy"] >= VOWEL_SCHEME_TARGET,
        "density": row["rhyme_density"] >= VOWEL_DENSITY_TARGET,
        "time": row["time_ratio"] <= VOWEL_TIME_RATIO_TARGET,
        "perplexity": perplexity_gap(row["sample_perplexity"], reference)
        <= perplexity_gap(unconstrained["sample_perplexity"], reference) + math.log(PERPLEXITY_SLACK),
        "function words": row["function_word_share"] <= unconstrained["function_word_share"],
    }


def row_targets(row: dict, unconstrained: dict, songs: dict) -> dict[str, bool]:
    """The targets a row is held to: issue 20's on several vowels, issue 10's on one."""
    return (meets_vowel_targets if row.get("vowels", 1) > 1 else meets_targets)(row, unconstrained, songs)


def choose_defaults(rows: Sequence[dict], unconstrained: dict, songs: dict) -> dict | None:
    """Among the settings with both levers, those meeting the most targets; of them, those whose
    scheme and syllable accuracies meet their targets at the 95% interval's lower bound; then the
    one whose bars the sampler itself reports met most often (the fewest misses a user is warned
    about), then the fastest. None without a setting with both levers."""
    both = [row for row in rows if row["lever"] == "both" and row.get("vowels", 1) == 1]
    if not both:
        return None

    def rank(row: dict) -> tuple:
        met = meets_targets(row, unconstrained, songs)
        sure = row["scheme_interval"][0] >= SCHEME_TARGET and row["within2_interval"][0] >= SYLLABLE_TARGET
        return (-sum(met.values()), not sure, -row["met"], row["time_ratio"])

    return min(both, key=rank)


def generate(generator, prompt, params: SamplingParams) -> tuple[list[str], list]:
    """(texts, bar records) of ``params.num_samples`` samples of ``prompt``, as ``jaxrap eval``
    generates them (the prompt's artist and token budget)."""
    from jaxrap.evaluate.samples import token_budget

    budget = token_budget(generator, prompt, params.max_new_tokens)
    params = params.replace(artist=prompt.condition, max_new_tokens=budget)
    texts, bars = [""] * params.num_samples, []
    for delta in generator.stream(prompt.prompt, params):
        texts[delta.sample] += delta.text
        if delta.bar is not None:
            bars.append(delta.bar)
    return texts, bars


def print_table(rows: Sequence[dict], unconstrained: dict, songs: dict, chosen: dict | None, args) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{args.model}: {args.scheme}, {args.syllables}±{args.tolerance} syllables, {rows[1]['texts']}"
        f" samples of {args.bars} bars per setting, seed {args.seed}"
    )
    others = [count for count in sorted(set(args.rhyme_vowels)) if count > 1]
    for column in (
        "setting",
        "scheme accuracy (95% CI)",
        *(f"on {count} vowels" for count in others),
        "density",
        "pair rhyme",
        "ends on a function word",
        "syllables ±2 (95% CI)",
        "±1",
        "mean",
        "sample ppl",
        "distinct-2",
        "loop rate",
        "copied run mean / max",
        "time per bar",
        "met (sampler)",
        "candidates / bar",
        "targets",
    ):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for row in rows:
        scheme_low, scheme_high = row["scheme_interval"]
        low, high = row["within2_interval"]
        met = "" if row["lever"] in ("songs", "none") else row_targets(row, unconstrained, songs)
        timing = (
            "-" if row["lever"] == "songs" else f"{row['seconds_per_bar'] * 1000:.0f} ms ({row['time_ratio']:.2f}x)"
        )
        table.add_row(
            row["name"] + (" (chosen)" if row is chosen else ""),
            f"{row['scheme_accuracy']:.1%} ({scheme_low:.0%}-{scheme_high:.0%})",
            *(f"{row['scheme_by_vowels'][count]:.1%}" for count in others),
            f"{row['rhyme_density']:.2f}",
            f"{row['pair_rhyme_length']:.2f}",
            f"{row['function_word_share']:.1%}",
            f"{row['within2']:.1%} ({low:.0%}-{high:.0%})",
            f"{row['within1']:.1%}",
            f"{row['mean_syllables']:.1f}",
            f"{row['sample_perplexity']:.1f}",
            f"{row['distinct2']:.3f}",
            f"{row['loop_rate']:.1%}",
            f"{row['mean_copied_run']:.1f} / {row['max_copied_run']}",
            timing,
            f"{row['met']:.1%}" if "met" in row else "-",
            f"{row['candidates_per_bar']:.1f}" if "candidates_per_bar" in row else "-",
            ""
            if not met
            else "all"
            if all(met.values())
            else "missed: " + ", ".join(k for k, v in met.items() if not v),
        )
    Console(width=max(Console().width, 200)).print(table)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="training run directory, HF model directory or hub id")
    parser.add_argument(
        "--data", required=True, type=Path, help="prepared corpus (its validation split gives the prompts)"
    )
    parser.add_argument("--samples", type=int, default=64, help="samples per setting (default 64)")
    parser.add_argument(
        "--samples-per-prompt", type=int, default=4, help="samples of each prompt, one batch (default 4)"
    )
    parser.add_argument("--bars", type=int, default=8, help="bars per sample (default 8)")
    parser.add_argument("--scheme", default="AABB", help="rhyme scheme (default AABB)")
    parser.add_argument("--syllables", type=int, default=12, help="syllables per bar (default 12)")
    parser.add_argument("--tolerance", type=int, default=2, help="syllable tolerance (default 2)")
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 4, 8], help="grid values (default 1 4 8)")
    parser.add_argument("--steering", type=float, nargs="+", default=[0.0, 3.0], help="grid values (default 0 3)")
    parser.add_argument("--redraws", type=int, nargs="+", default=[2], help="grid values (default 2)")
    parser.add_argument("--rhyme-vowels", type=int, nargs="+", default=[1],
                        help="grid values: rhymes on the last N vowels (default 1)")
    parser.add_argument("--max-new-tokens", type=int, default=224, help="token budget per sample (default 224)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed shared by every setting (default 0)")
    parser.add_argument("--json", type=Path, help="also write the rows and the chosen defaults here")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.samples_per_prompt < 1 or args.samples % args.samples_per_prompt:
        parser.error(
            f"--samples ({args.samples}) must be a positive multiple of --samples-per-prompt ({args.samples_per_prompt})"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    grid = settings(args)  # validates every value (JaxrapError) before the model loads

    from jaxrap.data.corpus import load_corpus
    from jaxrap.evaluate.flow_metrics import lyric_bars
    from jaxrap.evaluate.likelihood import ContinuationScorer
    from jaxrap.evaluate.memorisation import TrainWordIndex
    from jaxrap.evaluate.samples import eval_prompts
    from jaxrap.load import load_model
    from jaxrap.sample.decode import prompt_bucket
    from jaxrap.sample.generator import Generator

    loaded = load_model(args.model)
    generator, scorer = Generator(loaded), ContinuationScorer(loaded)
    count = args.samples // args.samples_per_prompt
    prompts = eval_prompts(args.data, "validation", count, loaded.song_prompt)
    if len(prompts) < count:
        raise JaxrapError(
            f"{args.data}: {len(prompts)} validation prompts, fewer than --samples / --samples-per-prompt = {count}"
        )
    index = TrainWordIndex(load_corpus(args.data)["train"]["text"])
    texts = {s.name: [] for s in grid}
    bars = {s.name: [] for s in grid}
    seconds = dict.fromkeys(texts, 0.0)
    texts[SONGS] = [["\n".join(lyric_bars(prompt.reference)[: args.bars]) + "\n"] for prompt in prompts]
    sampled = [s for s in grid if s.params is not None]
    # Compile outside the timed turns: each setting once per prompt bucket (decode.prompt_bucket).
    buckets = {
        prompt_bucket(len(generator.encode_prompt(p.prompt, p.condition)), loaded.config.n_positions): p
        for p in prompts
    }
    for setting, prompt in itertools.product(sampled, buckets.values()):
        generate(generator, prompt, setting.params)
    for number, prompt in enumerate(prompts, 1):
        for setting in sampled:
            start = time.perf_counter()
            prompt_texts, prompt_bars = generate(generator, prompt, setting.params)
            seconds[setting.name] += time.perf_counter() - start
            texts[setting.name].append(prompt_texts)
            bars[setting.name] += prompt_bars
        print(f"prompt {number}/{len(prompts)} done", flush=True)
    rows = []
    for setting in grid:
        row = {
            "name": setting.name,
            "lever": setting.lever,
            **measure(generator, scorer, index, prompts, texts[setting.name], args, setting.vowels),
        }
        if setting.params is not None:
            row["seconds_per_bar"] = seconds[setting.name] / max(row["bars"], 1)
            row["params"] = {
                k: v
                for k, v in dataclasses.asdict(setting.params).items()
                if k in ("candidates", "steering", "redraws", "rhyme_vowels")
            }
        if bars[setting.name]:
            kept = bars[setting.name]
            row.update(
                met=sum(b.met for b in kept) / len(kept),
                candidates_per_bar=sum(b.candidates for b in kept) / len(kept),
                redraw_rate=sum(b.redraws > 0 for b in kept) / len(kept),
            )
        rows.append(row)
    songs, unconstrained = rows[0], rows[1]
    for row in rows[1:]:
        row["time_ratio"] = row["seconds_per_bar"] / unconstrained["seconds_per_bar"]
    songs["time_ratio"] = float("nan")
    chosen = choose_defaults(rows, unconstrained, songs)
    print_table(rows, unconstrained, songs, chosen, args)
    if chosen is not None:
        print(
            f"chosen defaults: {chosen['params']} ({chosen['name']}); targets "
            + ", ".join(
                f"{k} {'met' if v else 'missed'}" for k, v in meets_targets(chosen, unconstrained, songs).items()
            )
        )
    for row in rows:
        if row.get("vowels", 1) > 1 and row["lever"] == "both":
            met = meets_vowel_targets(row, unconstrained, songs)
            print(f"{row['name']}: issue 20's targets " + ", ".join(f"{k} {'met' if v else 'missed'}" for k, v in met.items()))
    if args.json:
        record = {
            "model": args.model,
            "scheme": args.scheme,
            "syllables": args.syllables,
            "tolerance": args.tolerance,
            "bars": args.bars,
            "rhyme_vowels": args.rhyme_vowels,
            "seed": args.seed,
            "rows": rows,
            "chosen": None if chosen is None else chosen["name"],
        }
        args.json.write_text(json.dumps(record, ensure_ascii=False, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except JaxrapError as error:
        raise SystemExit(f"bench_flow: error: {error}") from None
