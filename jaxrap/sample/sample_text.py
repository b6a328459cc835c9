"""One sample's text, grown from its tokens on the host: UTF-8 safe deltas, stop strings, bars.

Byte-level BPE splits an accented letter or an emoji over several tokens, so decoding the
tokens seen so far can end in half a character (U+FFFD). Deltas follow vLLM's incremental
detokenizer: decode a short window of recent tokens, and emit only when it does not end in
U+FFFD. Text that could be the start of a stop string is held back until it is known not to
be one, so a stop string never shows, even split across chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

from jaxrap.sample.decode import NO_TOKEN

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PROMPT_CONTEXT = 4  # prompt tokens decoded with the first generated ones (keeps a leading space)
REPLACEMENT = "\ufffd"

# Why a sample ended (TextDelta.finish_reason).
END_OF_SONG, LENGTH, STOP, BARS, CANCELLED = "end_of_song", "length", "stop", "bars", "cancelled"


class SampleText:
    """Feed it a sample's tokens chunk by chunk; it returns the text to show for each chunk."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerFast,
        prompt_ids: Sequence[int],
        *,
        eos_token_id: int | None,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        max_bars: int = 0,
    ):
        self._tokenizer = tokenizer
        self._ids = list(prompt_ids[-PROMPT_CONTEXT:])
        self._prefix_offset, self._read_offset = 0, len(self._ids)  # decode window: ids[prefix:]
        self._eos, self._max_new_tokens = eos_token_id, max_new_tokens
        self._stop, self._max_bars = tuple(stop), max_bars
        self._held = ""  # decoded text held back: it may be the start of a stop string
        self.text = ""  # everything returned so far
        self.num_tokens = 0
        self.finish_reason: str | None = None

    def push(self, tokens: Iterable[int]) -> str:
        """Take the sample's next tokens (NO_TOKEN entries are ignored); return new text."""
        ending = None
        for token in tokens:
            token = int(token)
            if token == NO_TOKEN:
                continue
            self.num_tokens += 1
            if token == self._eos:
                ending = END_OF_SONG
                break
            self._ids.append(token)
            if self.num_tokens >= self._max_new_tokens:
                ending = LENGTH
                break
        return self._emit(self._decode(final=ending is not None), ending)

    def finish(self, reason: str) -> str:
        """End the sample now (cancelled, or out of tokens): the text still held back. A
        cancelled sample drops a trailing half character instead of showing U+FFFD."""
        return self._emit(self._decode(final=reason != CANCELLED), reason)

    def _decode(self, final: bool) -> str:
        ids, prefix, read = self._ids, self._prefix_offset, self._read_offset
        if len(ids) == read:
            return ""
        # One list of ids decodes to one str (decode's type also covers batches).
        before = cast(str, self._tokenizer.decode(ids[prefix:read], skip_special_tokens=True))
        after = cast(str, self._tokenizer.decode(ids[prefix:], skip_special_tokens=True))
        if after.endswith(REPLACEMENT) and not final:
            return ""  # half a character: wait for the rest of its bytes
        self._prefix_offset, self._read_offset = read, len(ids)
        return after[len(before):]

    def _emit(self, new_text: str, ending: str | None) -> str:
        """Apply stop strings and the bar limit to held + new text; return what can show."""
        if self.finish_reason is not None:
            return ""
        text = self._held + new_text
        cut, reason = len(text), ending
        stops = [i for i in (text.find(s) for s in self._stop) if i >= 0]
        if stops:
            cut, reason = min(stops), STOP
        if self._max_bars:
            bars_left = self._max_bars - self.text.count("\n")
            end = -1
            for _ in range(bars_left):
                end = text.find("\n", end + 1)
                if end < 0:
                    break
            if end >= 0 and end + 1 <= cut:
                cut, reason = end + 1, BARS
        if reason is None:
            cut -= self._partial_stop_length(text)
        self._held = text[cut:] if reason is None else ""
        self.text += text[:cut]
        self.finish_reason = reason
        return text[:cut]

    def _partial_stop_length(self, text: str) -> int:
        """Length of the longest end of ``text`` that a stop string starts with."""
        return max(
            (n for s in self._stop for n in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:n])),
            default=0,
        )
