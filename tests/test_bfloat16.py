"""model.dtype=bfloat16 end to end on CPU: training follows float32, greedy decoding equals it.

One tiny model (2 layers, 32 wide) trained 150 steps on the invented corpus, from the same seed
and batches in both dtypes. Measured when written: training loss 5.71 -> 1.225 in float32 and
1.223 in bfloat16, the per-step losses at most 0.017 nats apart (step 108, loss 1.35), and
validation loss 1.146 against 1.144 (0.2%). The tolerances below (6x and 10x those gaps) leave
room for other CPUs' rounding and still fail a bfloat16 path that learns measurably worse.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrap.config import load_config
from jaxrap.load import load_model
from jaxrap.model import gpt2
from jaxrap.sample.decode import NO_TOKEN, token_chunks
from jaxrap.sample.generator import Generator
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays
from jaxrap.sharding import make_mesh
from jaxrap.train.pipeline import run_training
from jaxrap.train.trackers import MemoryTracker

STEPS = 150
STEP_LOSS_ATOL = 0.1  # nats, any step
EVAL_LOSS_RTOL = 0.02
GREEDY = SamplingParams(temperature=0.0, repetition_penalty=1.0, seed=0)


@pytest.fixture(scope="module")
def runs(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path_factory):
    """{dtype: (training losses per step, final validation loss, run directory)}."""
    results = {}
    for dtype in ("float32", "bfloat16"):
        config = load_config(None, [
            f"data.path={tiny_corpus_dir}", f"model.tokenizer={tiny_tokenizer_dir}", "data.block_size=32",
            "model.shape.n_layer=2", "model.shape.n_head=2", "model.shape.n_embd=32", "model.shape.n_positions=64",
            "model.shape.dropout=0.0", "train.per_device_batch_size=8", f"train.steps={STEPS}", "train.log_every=1",
            f"train.eval_every={STEPS}", "optim.lr=1e-2", "optim.warmup_steps=5", f"model.dtype={dtype}",
        ])
        memory, run_dir = MemoryTracker(), tmp_path_factory.mktemp(dtype)
        run_training(config, run_dir, trackers=[memory], say=memory.messages.append,
                     mesh=make_mesh(config.mesh, jax.devices()[:1]), async_checkpoints=False)
        losses = np.array([metrics["loss"] for _, metrics in memory.records])
        results[dtype] = (losses, memory.records[-1][1]["eval_loss"], run_dir)
    return results


@pytest.mark.slow
def test_bfloat16_training_follows_float32(runs):
    (losses32, eval32, _), (losses16, eval16, _) = runs["float32"], runs["bfloat16"]
    assert len(losses16) == len(losses32) == STEPS
    assert losses32[-1] < losses32[0] - 3.0  # it learned: the comparison is not between two flat curves
    np.testing.assert_allclose(losses16, losses32, atol=STEP_LOSS_ATOL)
    assert eval16 == pytest.approx(eval32, rel=EVAL_LOSS_RTOL)


@pytest.fixture(scope="module")
def generators(runs):
    """The float32-trained model decoded in float32 and in bfloat16."""
    loaded = load_model(runs["float32"][2])
    return Generator(loaded), Generator(loaded, dtype="bfloat16")


def _greedy(generator: Generator, prompt_ids: list[int], new_tokens: int) -> list[int]:
    sampling = SamplingArrays.from_params(GREEDY.replace(max_new_tokens=new_tokens), eos_token_id=None)
    tokens = np.concatenate(list(token_chunks(generator.model, prompt_ids, sampling, num_samples=1)), 1)[0]
    return tokens[tokens != NO_TOKEN].tolist()


def _last_logits(generator: Generator, ids: list[int], dtype) -> np.ndarray:
    graphdef, _ = gpt2.abstract(generator.config, dtype=dtype)
    params = jax.tree.map(np.asarray, generator.model.params)
    return np.asarray(gpt2.forward(graphdef, params, np.array([ids], np.int32))[0][0, -1], np.float64)


@pytest.mark.slow
@pytest.mark.parametrize("prompt", ["J'traîne", "Mon cœur", "Frère", ""])
def test_bfloat16_greedy_decoding_equals_float32_up_to_a_near_tie(generators, prompt):
    """32 greedy tokens in each dtype are the same, except from a step where float32's two
    likeliest tokens are closer than bfloat16's rounding of the logits can tell apart: with
    the logits off by at most e, the argmax can only change where the top-2 gap is < 2e.
    Measured when written: all 4 prompts give the same 32 tokens. With the shipped preset's
    repetition penalty (1.1) "Frère" parts at token 21, where the penalised top-2 gap is 0.022
    nats and bfloat16's logits are off by up to 0.032: a near tie, not a bug."""
    float32, bfloat16 = generators
    prompt_ids = float32.encode_prompt(prompt)
    ours32, ours16 = _greedy(float32, prompt_ids, 32), _greedy(bfloat16, prompt_ids, 32)
    same = next((i for i, (a, b) in enumerate(zip(ours32, ours16)) if a != b), None)
    assert len(ours32) == len(ours16) == 32
    if same is None:
        assert ours16 == ours32
        return
    context = prompt_ids + ours32[:same]
    exact, rounded = _last_logits(float32, context, jnp.float32), _last_logits(float32, context, jnp.bfloat16)
    top2 = np.sort(exact)[-2:]
    assert exact.argmax() == ours32[same] and rounded.argmax() == ours16[same]
    assert top2[1] - top2[0] < 2 * np.abs(rounded - exact).max(), (same, top2, np.abs(rounded - exact).max())
