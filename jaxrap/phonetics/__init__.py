"""Text knowledge of French as rapped: syllables, rhyme keys, the Lexique 3.83 lexicon.

Pure Python and numpy, no jax: the sampler, ``jaxrap eval`` and the terminal UI build on it.
Imports only ``jaxrap.errors`` and ``jaxrap.data``; the lexicon loads on first use, never at
import, so importing this package costs nothing at start-up.
"""
