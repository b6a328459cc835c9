"""Evaluation: perplexity and lyric metrics (rhyme, repetition). Pure Python unless noted."""
