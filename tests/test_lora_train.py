"""LoRA runs through the pipeline and the command line: training the adapters (and the artist
tokens' rows) on a data mesh with accumulation and on an fsdp mesh with a bfloat16 base,
checkpoints that hold the adapters and name their base, bit-exact resume, refusals (other rank,
targets or base; bad LoRA settings), and the run used by generate / eval / export: merged into
transformers' class, or as a PEFT adapter that peft loads with the same logits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
import transformers

from jaxrap.checkpoint import Checkpoints
from jaxrap.config import MeshConfig, load_config
from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.load import load_model
from jaxrap.model import gpt2, hf, lm, lora
from jaxrap.model.config import GPT2Config
from jaxrap.model.partition import join
from jaxrap.rundir import RunDir, load_lora_base, load_run_params
from jaxrap.sharding import make_mesh, state_shardings
from jaxrap.train.pipeline import ensure_tokenizer, model_from_config, run_training
from jaxrap.train.trackers import CallbackTracker, MemoryTracker

STEPS = 12


def _config(corpus: Path, base: Path, *overrides: str):
    return load_config(None, [
        f"data.path={corpus}", f"model.init={base}", "data.block_size=32", "data.artist_tokens=true",
        "data.min_artist_songs=1", "model.lora.rank=4", "model.lora.alpha=8", "model.lora.dropout=0.1",
        "train.per_device_batch_size=2", "train.grad_accum_steps=2", f"train.steps={STEPS}", "train.log_every=1",
        "train.eval_every=6", "train.save_every=4", "train.keep_checkpoints=2", "optim.lr=1e-2",
        "optim.warmup_steps=2", *overrides,
    ])


def _train(config, run_dir: Path, *trackers, mesh=None):
    memory = MemoryTracker()
    result = run_training(config, run_dir, trackers=[memory, *trackers], say=memory.messages.append,
                          mesh=mesh or make_mesh(config.mesh))
    return result, memory


def _jaxrap(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    return subprocess.run([sys.executable, "-m", "jaxrap", *args], env=environment, capture_output=True, text=True,
                          timeout=timeout)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxrap: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def base_dir(tiny_lyrics_model_dir) -> Path:
    """The frozen base: conftest's random-init GPT-2 (2 layers, 32 wide) with the tiny BPE, in HF format."""
    return tiny_lyrics_model_dir


@pytest.fixture(scope="module")
def runs(tiny_corpus_dir, base_dir, tmp_path_factory):
    """On the session's 4-device data mesh with 2 accumulation steps: a whole run, and one
    stopped by SIGTERM halfway then resumed."""
    config = _config(tiny_corpus_dir, base_dir)
    root = tmp_path_factory.mktemp("lora_runs")
    whole, stopped = RunDir(root / "whole"), RunDir(root / "stopped")
    whole_result, whole_log = _train(config, whole.path)

    def terminate_at_half(step, metrics):
        if step == STEPS // 2:
            os.kill(os.getpid(), signal.SIGTERM)

    stop_result, stop_log = _train(config, stopped.path, CallbackTracker(terminate_at_half))
    resume_result, resume_log = _train(config, stopped.path)
    return {"config": config, "whole": whole, "stopped": stopped, "whole_result": whole_result, "whole_log": whole_log,
            "stop_result": stop_result, "stop_log": stop_log, "resume_log": resume_log}


def test_a_lora_run_trains_the_adapters_and_new_rows_only(runs, base_dir):
    log = runs["whole_log"]
    losses = [metrics["loss"] for _, metrics in log.records if "loss" in metrics]
    assert losses[-1] < losses[0]
    assert any("LoRA rank 4 trains" in message and "over a frozen float32 base" in message for message in log.messages)
    with Checkpoints(runs["whole"].checkpoints_dir, read_only=True) as checkpoints:
        meta = checkpoints.restore_meta(STEPS)
    record = meta["model"]["lora"]
    assert record["base"] == str(base_dir) and record["base_fingerprint"] == lora.checkpoint_fingerprint(base_dir)
    assert (record["rank"], record["alpha"], len(record["modules"])) == (4, 8.0, 8)
    assert record["modules"][0] == "transformer.h.0.attn.c_attn" and len(record["new_ids"]) == 3  # unknown + 2 artists

    saved = load_run_params(runs["whole"].path)
    leaves = [path[-1].key for path, _ in jax.tree_util.tree_leaves_with_path(saved.params)]
    assert sorted(set(leaves)) == ["lora_a", "lora_b", "new_rows"] and leaves.count("lora_a") == 8
    assert all(np.any(np.asarray(leaf)) for path, leaf in jax.tree_util.tree_leaves_with_path(saved.params)
               if path[-1].key == "lora_b")  # B left zero: it trained


def test_a_resumed_lora_run_equals_the_uninterrupted_one(runs):
    assert runs["stop_result"].stopped_by == "SIGTERM"
    whole, stopped, resumed = (dict(runs[name].records) for name in ("whole_log", "stop_log", "resume_log"))
    assert any(message.startswith("resumed from checkpoint") for message in runs["resume_log"].messages)
    for step in range(1, STEPS + 1):
        replay = resumed[step] if step in resumed else stopped[step]
        assert replay["loss"] == whole[step]["loss"], step  # bit-identical, LoRA dropout included
        assert replay["grad_norm"] == whole[step]["grad_norm"], step
    assert resumed[STEPS]["eval_loss"] == whole[STEPS]["eval_loss"]
    jax.tree.map(np.testing.assert_array_equal, load_run_params(runs["stopped"].path).params,
                 load_run_params(runs["whole"].path).params)


def test_the_loaded_run_is_its_base_with_the_adapters_merged(runs):
    model = load_model(runs["whole"].path)  # what generate, eval and the TUI load
    saved = load_run_params(runs["whole"].path)
    base = load_lora_base(model.config, saved, seed=runs["config"].train.seed)
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, (2, 20))
    ids[:, 0] = saved.lora.new_ids[-1]
    adapted = lora.make_forward(model.config, saved.lora)(join(saved.params, base), ids, None)
    np.testing.assert_allclose(lm.make_forward(model.config)(model.params, ids, None), adapted, atol=2e-5)
    assert model.step == STEPS and model.artists == ("Médine", "Shurik'n", "unknown")


def test_generate_and_eval_take_a_lora_run_directory(runs, tiny_corpus_dir):
    run_dir = str(runs["whole"].path)
    generated = _jaxrap("generate", "--model", run_dir, "--prompt", "J'", "--max-new-tokens", "8", "--seed", "1",
                        "--artist", "Médine")
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert generated.stdout.startswith("J'")
    evaluated = _jaxrap("eval", "--model", run_dir, "--data", str(tiny_corpus_dir), "--json", "--no-judge")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(evaluated.stdout)
    assert np.isclose(report["loss"], runs["whole_result"].eval_loss, atol=1e-4)  # training's validation loss


def test_export_writes_the_merged_model_or_a_peft_adapter_with_the_same_logits(runs, base_dir, tmp_path):
    import peft

    run_dir = str(runs["whole"].path)
    merged_dir, adapter_dir = tmp_path / "merged", tmp_path / "adapter"
    assert _jaxrap("export", "--run-dir", run_dir, "--out", str(merged_dir)).returncode == 0
    exported = _jaxrap("export", "--run-dir", run_dir, "--out", str(adapter_dir), "--adapter")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "rank-4 LoRA adapters of step 12" in exported.stdout and "3 new token rows" in exported.stdout
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["target_modules"] == ["c_attn", "c_fc", "c_proj"] and adapter_config["fan_in_fan_out"]
    assert adapter_config["base_model_name_or_path"] == str(base_dir)

    model = load_model(runs["whole"].path)
    ids = np.random.default_rng(1).integers(0, model.config.vocab_size, (2, 24))
    ids[:, 0] = min(adapter_config["trainable_token_indices"]["wte"])  # an artist token
    ours = np.asarray(lm.make_forward(model.config)(model.params, ids, None))

    with torch.no_grad():
        merged = transformers.GPT2LMHeadModel.from_pretrained(merged_dir).eval()
        np.testing.assert_allclose(merged(torch.tensor(ids)).logits.numpy(), ours, atol=1e-4)
        base = transformers.GPT2LMHeadModel.from_pretrained(base_dir)
        base.resize_token_embeddings(len(load_tokenizer(adapter_dir)))
        adapted = peft.PeftModel.from_pretrained(base, adapter_dir).eval()
        np.testing.assert_allclose(adapted(torch.tensor(ids)).logits.numpy(), ours, atol=1e-4)


@pytest.fixture(scope="module")
def untied_llama_dir(tiny_tokenizer_dir, tmp_path_factory) -> Path:
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("lora_llama")
    transformers.LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_lora_on_an_fsdp_mesh_with_a_bfloat16_base_exports_a_peft_adapter(untied_llama_dir, tiny_corpus_dir, tmp_path):
    """An untied Llama-style base stored in bfloat16 and sharded over 4 devices, bfloat16 compute;
    the artist tokens' embedding rows and head columns train with the adapters."""
    import peft

    config = _config(tiny_corpus_dir, untied_llama_dir, "mesh.fsdp=4", "model.base_dtype=bfloat16",
                     "model.dtype=bfloat16", "model.lora.targets=q_proj|v_proj|down_proj", "model.lora.rank=16",
                     "train.steps=4", "train.eval_every=4", "train.save_every=4")
    run = RunDir(tmp_path / "run")
    mesh = make_mesh(config.mesh)
    # The frozen base lands on the devices in bfloat16, sharded; the adapters beside it.
    tokenizer = ensure_tokenizer(config, run, tiny_corpus_dir, lambda text: None, reuse=False)
    model_config, load = model_from_config(config, run, tokenizer, resuming=False)
    frozen = load(state_shardings(mesh, lm.abstract(model_config)[1]))
    kernel = frozen["layers"][0]["mlp"]["down_proj"]["kernel"]  # (128, 64), split along its 128 rows
    assert kernel.dtype == jax.numpy.bfloat16 and kernel.sharding.shard_shape(kernel.shape) == (32, 64)

    result, log = _train(config, run.path, mesh=mesh)
    assert result.step == 4 and np.isfinite(result.eval_loss)
    saved = load_run_params(run.path)
    assert saved.params["layers"][0]["mlp"]["down_proj"]["lora_a"].shape == (128, 16)
    assert saved.params["lm_head"]["new_columns"].shape == (64, 3)

    adapter_dir = tmp_path / "adapter"
    assert _jaxrap("export", "--run-dir", str(run.path), "--out", str(adapter_dir), "--adapter").returncode == 0
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["target_modules"] == ["down_proj", "q_proj", "v_proj"] and not adapter_config["fan_in_fan_out"]
    model = load_model(run.path)
    ids = np.random.default_rng(2).integers(0, model.config.vocab_size, (2, 24))
    ids[:, 3] = saved.lora.new_ids[0]
    ours = np.asarray(lm.make_forward(model.config)(model.params, ids, None))
    with torch.no_grad():
        base = transformers.LlamaForCausalLM.from_pretrained(untied_llama_dir)
        base.resize_token_embeddings(len(load_tokenizer(adapter_dir)))
        adapted = peft.PeftModel.from_pretrained(base, adapter_dir).eval()
        np.testing.assert_allclose(adapted(torch.tensor(ids)).logits.numpy(), ours, atol=1e-4)


@pytest.fixture(scope="module")
def short_run(tiny_corpus_dir, base_dir, tmp_path_factory) -> RunDir:
    """A 2-step LoRA run on a copy of the base, whose directory tests may replace."""
    root = tmp_path_factory.mktemp("short_lora")
    shutil.copytree(base_dir, root / "base")
    run = RunDir(root / "run")
    config = _config(tiny_corpus_dir, root / "base", "train.steps=2", "train.eval_every=2", "train.save_every=2",
                     "train.grad_accum_steps=1")
    _train(config, run.path, mesh=make_mesh(MeshConfig(), jax.devices()[:1]))
    return run


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.lora.rank=8", "has checkpoints of a run with another config: model.lora.rank (4 -> 8)."),
        ("model.lora.targets=c_attn", "has checkpoints of a run with another config: model.lora.targets (None -> 'c_attn')."),
    ],
)
def test_resuming_with_other_lora_settings_is_refused(short_run, override, message):
    error = _one_line_error(_jaxrap("train", "--run-dir", str(short_run.path), "--set", override, "--set", "train.steps=4"))
    assert message in error


def test_resuming_or_loading_onto_another_base_is_refused(short_run, tiny_tokenizer_dir, tmp_path):
    run = RunDir(tmp_path / "run")
    shutil.copytree(short_run.path, run.path)
    base = Path(load_config(run.config_file).model.init)
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    other = GPT2Config(n_positions=64, n_embd=32, n_layer=3, n_head=4).for_tokenizer(tokenizer)  # a layer more
    original = lora.checkpoint_fingerprint(base)
    saved_base = tmp_path / "saved_base"
    shutil.copytree(base, saved_base)
    try:
        hf.save_pretrained(base, other, gpt2.build(other, seed=0)[1], tokenizer=tokenizer)
        error = _one_line_error(_jaxrap("train", "--run-dir", str(run.path), "--set", "train.steps=4"))
        assert f"checkpoint 2 in {run.checkpoints_dir} was trained on another model: lora.base_fingerprint ('{original}'" in error
        error = _one_line_error(_jaxrap("generate", "--model", str(run.path), "--max-new-tokens", "4"))
        assert f"adapters were trained on {base} with fingerprint {original}" in error
    finally:
        shutil.rmtree(base)
        shutil.copytree(saved_base, base)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.lora.targets=q_proj|v_proj"], "model.lora.targets: 'q_proj|v_proj' matches no linear layer of GPT-2 2 layers"
         " x 32 wide, 4 heads; its linear layers are c_attn, c_proj, c_fc (e.g. transformer.h.0.attn.c_attn)"),
        (["model.lora.targets=[c_attn, wte]"], "model.lora.targets: 'wte' matches no linear layer of GPT-2"),
        (["model.lora.rank=0"], "invalid config: model.lora.rank: must be > 0, got 0"),
        (["model.lora.rank=33"], "model.lora.rank: 33 is above the smaller side of transformer.h.0.attn.c_attn (32 x 96);"
         " use at most 32"),
        (["model.lora.alpha=0"], "invalid config: model.lora.alpha: must be > 0.0, got 0"),
        (["model.lora.targets=c_(attn"], "model.lora.targets: not a valid regex (missing ), unterminated subpattern"),
        (["model.init=scratch"], "model.lora: needs a pretrained model.init to adapt"),
        (["model.lora=null", "model.base_dtype=bfloat16"], "model.base_dtype: bfloat16 needs model.lora"),
    ],
)
def test_bad_lora_settings_are_refused_in_one_line_before_any_work(overrides, message, base_dir, tmp_path):
    command = ["train", "--config", str(Path(__file__).parents[1] / "configs" / "tiny_cpu.yaml"),
               "--run-dir", str(tmp_path / "run"), "--set", f"data.path={tmp_path / 'corpus'}",
               "--set", f"model.init={base_dir}", "--set", "model.shape=null", "--set", "model.lora.rank=4"]
    for override in overrides:
        command += ["--set", override]
    assert message in _one_line_error(_jaxrap(*command))
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "run").exists()


def test_export_adapter_of_a_run_without_lora_is_refused(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    config = load_config(None, [
        f"data.path={tiny_corpus_dir}", f"model.tokenizer={tiny_tokenizer_dir}", "data.block_size=16",
        "model.shape.n_layer=1", "model.shape.n_head=2", "model.shape.n_embd=16", "model.shape.n_positions=16",
        "train.steps=1", "train.per_device_batch_size=1",
    ])
    _train(config, tmp_path / "run", mesh=make_mesh(MeshConfig(), jax.devices()[:1]))
    error = _one_line_error(_jaxrap("export", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--adapter"))
    assert error == (f"jaxrap: error: {tmp_path / 'run'}: not a LoRA run (model.lora is null), so it has no adapters;"
                     " export the whole model without --adapter")


def test_the_terminal_uis_engine_loads_a_lora_run(runs):
    from jaxrap.tui.engine import load_engine

    stages = []
    engine = load_engine(str(runs["whole"].path), stages.append)
    assert engine.model.step == STEPS and engine.model.artists == ("Médine", "Shurik'n", "unknown")
    assert stages == ["starting jax", "loading the model", "compiling the decoder"]
