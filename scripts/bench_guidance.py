"""Artist guidance measured: does ``--artist-guidance W`` make samples read like the requested
artist to a judge that never saw the model, and at what cost?

    python scripts/bench_guidance.py --model runs/tiny_cpu_900 --data data/rap --out runs/guidance_tiny_cpu_900

For every W (default 1, 1.5, 2, 3, 5), the same ``--samples-per-prompt`` samples after each of
the validation prompts ``jaxrap eval`` uses (the first bar of each song, written for the song's
artist; ``--prompts 0``: every song, 149 on the real slice), with the same seed, so the weights
differ by their guidance rather than their draws. Each W is scored as ``jaxrap eval`` scores
samples:

- attribution: the share of samples the independent judge (``evaluate.artist_classifier``,
  trained on the train split) attributes to the requested artist, per artist, and Cohen's kappa
  (which a judge leaning to one artist cannot inflate). Samples of one prompt are not
  independent, so the 95% intervals come from a bootstrap over prompts; the ratio to W = 1 is
  bootstrapped the same way, paired (the same prompts in each draw);
- sample perplexity: the model's own perplexity of its samples at temperature 1, no filters,
  conditioned on the requested artist, beside the songs' real continuations' (the
  ``validation continuations`` row, cut to the same budget); its distance from the songs' is
  the sweep's ``|log(sample / songs)|``;
- distinct-2 and the loop rate (with a Wilson interval) of ``evaluate.lyric_metrics``;
- copying: the longest run of words copied from the train split (mean and max over samples),
  and the share of samples copying 8 words or more (``evaluate.memorisation``);
- time per token: every W decodes the same prompt, ``--timing-tokens`` tokens per sample (no
  early end), each call right after one at W = 1, ``--timing-rounds`` times; the median of
  those pairs' ratios (the machine's load drifts; a pair sees about the same load), and the
  ratio of the best times, which contention can only lengthen. Beside them the whole sweep's
  seconds per generated token, for what the samples themselves cost.

Samples are saved in ``--out`` (``samples-w<W>.json``) as each W finishes, and a rerun with the
same model, prompts, seed and token budget reuses them. Writes ``guidance.json`` (every figure)
and prints the tables the README shows.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxrap.errors import JaxrapError

HUMAN = "validation continuations"
BOOTSTRAP = 2000  # resamples of the prompts
TIMING_PROMPT = "J'traîne au quartier, la nuit tombe\n"


def weighted_attribution(requested: np.ndarray, attributed: np.ndarray, weight: np.ndarray, labels: int) -> tuple[float, float]:
    """(accuracy, Cohen's kappa) of attributions (N,) of samples requested for (N,) (label
    indices), each sample counted ``weight`` (N,) times."""
    total = weight.sum()
    observed = weight @ (attributed == requested) / total
    expected = (np.bincount(requested, weight, minlength=labels) / total) @ (np.bincount(attributed, weight, minlength=labels) / total)
    return float(observed), float((observed - expected) / (1 - expected)) if expected < 1 else 0.0


def bootstrap_attribution(
    requested: np.ndarray, attributed: np.ndarray, prompt_of: np.ndarray, labels: int, *, draws: int = BOOTSTRAP, seed: int = 0
) -> dict[str, np.ndarray]:
    """Accuracy and Cohen's kappa of (W, N) attributions of N samples (label indices; ``requested``
    (N,), the same for every W), over ``draws`` resamples of the prompts (``prompt_of`` (N,)):
    {"accuracy": (draws, W), "kappa": (draws, W)}. Every W sees the same resampled prompts."""
    rng = np.random.default_rng(seed)
    prompts = np.unique(prompt_of)
    position = np.searchsorted(prompts, prompt_of)  # (N,) index of each sample's prompt
    scores = np.zeros((2, draws, attributed.shape[0]))
    for draw in range(draws):
        weight = np.bincount(rng.integers(len(prompts), size=len(prompts)), minlength=len(prompts))[position]  # (N,)
        for w, row in enumerate(attributed):
            scores[:, draw, w] = weighted_attribution(requested, row, weight, labels)
    return {"accuracy": scores[0], "kappa": scores[1]}


def interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap values (draws,), without interpolation: a ratio's
    infinite draws (a zero denominator) rank above every finite one, and its 0 / 0 draws, which
    say nothing, are left out."""
    values = values[~np.isnan(values)]
    low, high = np.percentile(values, 2.5, method="lower"), np.percentile(values, 97.5, method="higher")
    return float(low), float(high)


def ratio(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """values / reference, inf where the reference is 0 (nan for 0 / 0: no information)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return values / reference


def perplexity_gap(perplexity: float, reference: float) -> float:
    """|log(sample perplexity / the songs')|: how far from as likely as real lyrics (the sweep's)."""
    return abs(math.log(perplexity / reference))


def time_per_token(generator, weights: Sequence[float], artist: str, params, rounds: int) -> dict[float, list[tuple[float, float]]]:
    """Seconds per generated token of each guided weight, each call right after one at W = 1 in
    every round: {w: [(W = 1's, w's), ...]}, so the load's drift falls on both sides of a pair.
    A warm-up call per weight first, so compiling is not timed."""
    runs = {w: params.replace(artist=artist, artist_guidance=w) for w in weights}
    tokens = params.max_new_tokens * params.num_samples

    def timed(weight: float) -> float:
        start = time.perf_counter()
        generator.generate(TIMING_PROMPT, runs[weight])
        return (time.perf_counter() - start) / tokens

    for weight in weights:
        timed(weight)
    pairs: dict[float, list[tuple[float, float]]] = {w: [] for w in weights[1:]}
    for _ in range(rounds):
        for weight in weights[1:]:
            pairs[weight].append((timed(weights[0]), timed(weight)))
    return pairs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="training run directory or exported model trained with artist tokens")
    parser.add_argument("--data", required=True, type=Path, help="prepared corpus (train split: the judge; validation: the prompts)")
    parser.add_argument("--out", required=True, type=Path, help="directory for the samples and guidance.json")
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 5.0], help="guidance weights (1 first)")
    parser.add_argument("--prompts", type=int, default=0, help="validation prompts (default 0: one per song)")
    parser.add_argument("--samples-per-prompt", type=int, default=3, help="samples of each prompt, one batch (default 3)")
    parser.add_argument("--max-new-tokens", type=int, default=224, help="tokens per sample at most (default 224)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of every weight (default 0)")
    parser.add_argument("--timing-rounds", type=int, default=10, help="timing pairs per weight (default 10)")
    parser.add_argument("--timing-tokens", type=int, default=128, help="tokens per sample in the timing (default 128)")
    args = parser.parse_args(argv)
    if args.weights[0] != 1.0 or len(set(args.weights)) != len(args.weights):
        parser.error(f"--weights must start with 1 (the reference) and not repeat, got {args.weights}")
    if args.samples_per_prompt < 1 or args.prompts < 0:
        parser.error("--samples-per-prompt must be >= 1 and --prompts >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    from jaxrap.data.artists import UNKNOWN_ARTIST
    from jaxrap.data.corpus import load_corpus
    from jaxrap.evaluate.artist_classifier import ArtistClassifier
    from jaxrap.evaluate.likelihood import ContinuationScorer
    from jaxrap.evaluate.lyric_metrics import lyric_stats
    from jaxrap.evaluate.memorisation import TrainWordIndex, memorisation_stats
    from jaxrap.evaluate.samples import continuation_perplexity, cut_reference, eval_prompts, generate_samples
    from jaxrap.load import load_model
    from jaxrap.sample.generator import Generator
    from jaxrap.sample.params import SamplingParams

    loaded = load_model(args.model)
    if not loaded.artists:
        raise JaxrapError(f"{args.model}: a model without artist tokens has nothing to guide; train one with data.artist_tokens: true")
    generator, scorer = Generator(loaded), ContinuationScorer(loaded)
    prompts = [p for p in eval_prompts(args.data, "validation", args.prompts, loaded.song_prompt) if p.condition != UNKNOWN_ARTIST]
    if not prompts:
        raise JaxrapError(f"{args.data}: no validation prompt of an artist the model has a token for")
    named = sorted({p.condition for p in prompts if p.condition is not None})
    base = SamplingParams(num_samples=args.samples_per_prompt, max_new_tokens=args.max_new_tokens, seed=args.seed)
    run = {"model": str(args.model), "prompts": len(prompts), "samples_per_prompt": args.samples_per_prompt,
           "max_new_tokens": args.max_new_tokens, "seed": args.seed, "unknown_train_songs": loaded.unknown_train_songs()}
    print(f"{args.model}: {len(prompts)} prompts x {args.samples_per_prompt} samples, weights {args.weights};"
          f" train songs on <|artist:unknown|>: {run['unknown_train_songs']}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    texts: dict[float, list[list[str]]] = {}
    sweep_seconds: dict[float, float] = {}
    for weight in args.weights:
        path = args.out / f"samples-w{weight:g}.json"
        saved = json.loads(path.read_text()) if path.is_file() else None
        if saved is not None and saved["run"] == run:
            texts[weight], sweep_seconds[weight] = saved["texts"], saved["seconds"]
            continue
        start = time.perf_counter()
        texts[weight] = generate_samples(generator, prompts, base.replace(artist_guidance=weight))
        sweep_seconds[weight] = time.perf_counter() - start
        path.write_text(json.dumps({"run": run, "seconds": sweep_seconds[weight], "texts": texts[weight]}, ensure_ascii=False))
        print(f"W {weight:g}: {sweep_seconds[weight]:.0f} s", flush=True)

    judge = ArtistClassifier.train(args.data, artists=named, seed=0)
    index = TrainWordIndex(load_corpus(args.data)["train"]["text"])
    references = [[cut_reference(generator, prompt, args.max_new_tokens)] for prompt in prompts]
    reference_perplexity = continuation_perplexity(scorer, generator, prompts, references).perplexity
    label = {name: i for i, name in enumerate(judge.labels)}

    def scores(columns: list[list[str]]) -> dict:
        flat = [text for column in columns for text in column]
        stats, copied = lyric_stats(flat), memorisation_stats(index, flat)
        requested = [prompt.condition for prompt, column in zip(prompts, columns, strict=True) for _ in column]
        judged = judge.accuracy(flat, requested)
        return {
            "texts": len(flat), "attribution": judged.accuracy, "kappa": judged.kappa, "per_artist": judged.per_artist,
            "distinct2": stats.distinct2, "loop_rate": stats.loop_rate, "rep4": stats.rep4,
            "mean_copied_run": copied.mean_longest_run, "max_copied_run": copied.max_longest_run,
            "copy_rate": copied.copy_rate, "attributed": [label[name] for name in judge.predict(flat)],
            "requested": [label[name] for name in requested],
            "prompt_of": [i for i, column in enumerate(columns) for _ in column],
        }

    human = {**scores(references), "sample_perplexity": reference_perplexity}
    rows = {}
    for weight in args.weights:
        rows[weight] = scores(texts[weight])
        perplexity = continuation_perplexity(scorer, generator, prompts, texts[weight])
        rows[weight].update(sample_perplexity=perplexity.perplexity, tokens=perplexity.tokens,
                            perplexity_gap=perplexity_gap(perplexity.perplexity, reference_perplexity),
                            sweep_seconds_per_token=sweep_seconds[weight] / perplexity.tokens)
        print(f"W {weight:g}: attribution {rows[weight]['attribution']:.1%}, kappa {rows[weight]['kappa']:.3f},"
              f" sample perplexity {perplexity.perplexity:.1f}", flush=True)

    first = rows[args.weights[0]]
    boot = bootstrap_attribution(np.array(first["requested"]), np.array([rows[w]["attributed"] for w in args.weights]),
                                 np.array(first["prompt_of"]), len(judge.labels))
    for i, weight in enumerate(args.weights):
        rows[weight].update(
            attribution_interval=interval(boot["accuracy"][:, i]), kappa_interval=interval(boot["kappa"][:, i]),
            attribution_ratio_interval=interval(ratio(boot["accuracy"][:, i], boot["accuracy"][:, 0])),
        )

    timing_params = base.replace(max_new_tokens=args.timing_tokens, min_new_tokens=args.timing_tokens)
    pairs = time_per_token(generator, args.weights, named[0], timing_params, args.timing_rounds)
    unguided = [reference for timings in pairs.values() for reference, _ in timings]
    rows[args.weights[0]].update(seconds_per_token=statistics.median(unguided), time_ratio=1.0, time_ratio_best=1.0)
    for weight, timings in pairs.items():
        rows[weight].update(
            seconds_per_token=statistics.median(guided for _, guided in timings),
            time_ratio=statistics.median(guided / reference for reference, guided in timings),
            time_ratio_best=min(guided for _, guided in timings) / min(unguided),
        )

    for row in (human, *rows.values()):
        for key in ("attributed", "requested", "prompt_of"):
            row.pop(key)
    result = {"run": run, "chance": 1 / len(judge.labels), HUMAN: human, "weights": {f"{w:g}": rows[w] for w in args.weights}}
    (args.out / "guidance.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print_tables(result)
    print(f"wrote {args.out / 'guidance.json'}")
    return 0


def print_tables(result: dict) -> None:
    """The summary table and the per-artist attribution, as Markdown (the README's form)."""
    human, weights = result[HUMAN], result["weights"]
    print(f"\n{result['run']['model']}: {result['run']['prompts']} prompts x {result['run']['samples_per_prompt']} samples;"
          f" chance {result['chance']:.1%}\n")
    print("| W | attribution (95% CI) | x W = 1 (95% CI) | kappa (95% CI) | sample perplexity (distance) | distinct-2"
          " | loop rate | copied run, mean / max (>= 8 words) | time per token (x W = 1: median pair, best) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| songs | {human['attribution']:.1%} | | {human['kappa']:.3f} | {human['sample_perplexity']:.1f} |"
          f" {human['distinct2']:.3f} | {human['loop_rate']:.1%} | {human['mean_copied_run']:.1f} / {human['max_copied_run']}"
          f" ({human['copy_rate']:.1%}) | |")
    for weight, row in weights.items():
        low, high = row["attribution_interval"]
        ratio_low, ratio_high = row["attribution_ratio_interval"]
        kappa_low, kappa_high = row["kappa_interval"]
        print(f"| {weight} | {row['attribution']:.1%} ({low:.1%}-{high:.1%}) |"
              f" {row['attribution'] / weights['1']['attribution']:.2f} ({ratio_low:.2f}-{ratio_high:.2f}) |"
              f" {row['kappa']:.3f} ({kappa_low:.3f}-{kappa_high:.3f}) |"
              f" {row['sample_perplexity']:.1f} ({row['perplexity_gap']:.2f}) | {row['distinct2']:.3f} | {row['loop_rate']:.1%} |"
              f" {row['mean_copied_run']:.1f} / {row['max_copied_run']} ({row['copy_rate']:.1%}) |"
              f" {1000 * row['seconds_per_token']:.2f} ms ({row['time_ratio']:.2f}x, best {row['time_ratio_best']:.2f}x) |")
    artists = sorted(human["per_artist"])
    print("\n| W | " + " | ".join(artists) + " |")
    print("|---|" + "---|" * len(artists))
    for name, row in (("songs", human), *weights.items()):
        cells = [f"{row['per_artist'][a]['accuracy']:.0%}" if a in row["per_artist"] else "-" for a in artists]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except JaxrapError as error:
        raise SystemExit(f"bench_guidance: error: {error}") from None
