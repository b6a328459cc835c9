"""`jaxrap export`: a training run's checkpoint as a Hugging Face model directory (a LoRA run's
adapters merged into its base), or with ``--adapter`` a LoRA run's adapters as a PEFT adapter."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxrap.errors import JaxrapError


def _step(value: str) -> int | str:
    if value == "best":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a step number or 'best', got {value!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a run's checkpoint in Hugging Face format (config.json, model.safetensors, tokenizer)",
        description="Load a checkpoint of a training run directory (the newest readable one, or --step) and"
        " write config.json, model.safetensors and the tokenizer files, which transformers' class for the"
        " model's model_type (GPT2LMHeadModel, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,"
        " Qwen3ForCausalLM) and AutoTokenizer load, as do `jaxrap generate --model` and"
        " `model.init` of another run. It also writes jaxrap_prompt.json, so jaxrap starts prompts"
        " as the run's training songs started (end-of-song, then the artist token when conditioned).",
    )
    parser.add_argument("--run-dir", required=True, type=Path, help="training run directory (made by `jaxrap train`)")
    parser.add_argument("--out", required=True, type=Path, help="directory to write the model to")
    parser.add_argument("--step", type=_step, help="checkpoint step, or 'best' (lowest validation loss); default: the newest")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an existing model directory")
    parser.add_argument(
        "--adapter", action="store_true",
        help="of a LoRA run (model.lora): write its adapters in PEFT's format (adapter_config.json,"
        " adapter_model.safetensors, the tokenizer) instead of the merged model, for peft.PeftModel.from_pretrained",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jaxrap.data.artists import write_prompt_format
    from jaxrap.model import hf
    from jaxrap.rundir import load_run_model

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())) and not args.overwrite:
        raise JaxrapError(f"{args.out}: exists and is not empty; pick a new --out or pass --overwrite")
    if args.adapter:
        return export_adapter(args)
    model = load_run_model(args.run_dir, step=args.step)
    hf.save_pretrained(args.out, model.config, model.params, tokenizer=model.tokenizer)
    song_prompt = model.song_prompt
    unknown_songs = song_prompt.unknown_train_songs if song_prompt is not None else None
    write_prompt_format(args.out, artist_tokens=bool(model.artists), unknown_train_songs=unknown_songs)
    print(
        f"exported step {model.step} of {args.run_dir} ({model.config.num_params() / 1e6:.2f}M parameters,"
        f" vocab {model.config.vocab_size:,}) to {args.out}"
    )
    return 0


def export_adapter(args: argparse.Namespace) -> int:
    """``--adapter``: the run's adapters as a PEFT adapter of its base, with the run's tokenizer."""
    from jaxrap.config import load_config
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model.peft_adapter import save_peft_adapter
    from jaxrap.model.registry import read_config
    from jaxrap.rundir import RunDir, is_run_dir, load_run_params

    run = RunDir(args.run_dir)
    if is_run_dir(run.path) and load_config(run.config_file).model.lora is None:
        raise JaxrapError(
            f"{run.path}: not a LoRA run (model.lora is null), so it has no adapters; export the whole model without --adapter"
        )
    saved = load_run_params(run.path, step=args.step)
    assert saved.lora is not None and saved.base is not None  # model.lora runs save adapters (CheckpointHook's record)
    config = read_config(run.model_config_file)
    save_peft_adapter(args.out, config, saved.lora, saved.params, base=saved.base)
    load_tokenizer(run.tokenizer_dir).save_pretrained(args.out)
    resize = f"; resize the base's embeddings to the tokenizer's {config.vocab_size:,} tokens first" if saved.lora.new_ids else ""
    print(
        f"exported the rank-{saved.lora.rank} LoRA adapters of step {saved.step} of {run.path}"
        f" ({len(saved.lora.modules)} modules{', ' + str(len(saved.lora.new_ids)) + ' new token rows' if saved.lora.new_ids else ''})"
        f" to {args.out}: peft.PeftModel.from_pretrained(<{saved.base}>, {str(args.out)!r}){resize}"
    )
    return 0
