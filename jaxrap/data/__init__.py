"""The data layer: raw lyrics -> prepared corpus -> tokenizer -> token cache -> batches."""
