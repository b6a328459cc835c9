"""The sampling parameter panel: one input per SamplingParams field, checked as you type.

``SamplingParams`` is the single source of truth for what is allowed; no range is repeated
here. Each input's validator builds a SamplingParams from the panel's current values and
keeps the problems that name its own field (problems of other fields are set aside by giving
those fields their defaults), so a combination such as min tokens above max tokens marks the
field it names, and every input is checked again whenever one changes.

A model trained with artist tokens also gets an artist selector, first in the grid: the model
loads after the panel is drawn, so ``show_artists`` mounts it once the model is ready, and a
model without artists never has one. Its value is ``SamplingParams.artist`` as is: a known
name, or None ("none (unknown)": the shared unknown token, no specific artist).

Two rules are the panel's own because they depend on the model, not on the values alone
(the sampler checks them too, when it starts): artist guidance needs an artist, and a model
with artist tokens (``guidance_problem``). A problem only the sampler can see (no room for one
bar after the prompt) comes back as a FieldError and is shown on its field (``show_problem``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, VerticalGroup
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static

from jaxrap.data.artists import UNKNOWN_ARTIST
from jaxrap.errors import FieldError
from jaxrap.sample.params import DEFAULT_MAX_NEW_TOKENS, SamplingParams


@dataclass(frozen=True)
class ParamField:
    name: str  # the SamplingParams field
    label: str
    kind: type  # int, float or str
    hint: str  # tooltip
    blank_is_none: bool = False  # an empty input means None (the seed: a fresh one each time)
    placeholder: str = ""  # shown in an empty input: what None means


FIELDS = (
    ParamField(
        "max_new_tokens", "max tokens", int,
        f"Stop after this many new tokens; blank: as many as fit the model's context after the prompt, at most {DEFAULT_MAX_NEW_TOKENS}.",
        blank_is_none=True, placeholder="auto",
    ),
    ParamField("min_new_tokens", "min tokens", int, "No end of song before this many new tokens."),
    ParamField("temperature", "temperature", float, "0 is greedy; higher is wilder."),
    ParamField("top_k", "top-k", int, "Keep the k likeliest tokens; 0 turns it off."),
    ParamField("top_p", "top-p", float, "Keep the likeliest tokens that hold this probability; 1 turns it off."),
    ParamField("min_p", "min-p", float, "Drop tokens below min-p times the likeliest one's probability; 0 turns it off."),
    ParamField("repetition_penalty", "repetition", float, "Repetition penalty: above 1 discourages repeating tokens; 1 turns it off."),
    ParamField("no_repeat_ngram_size", "no-repeat n", int, "Never repeat an n-gram of this many tokens; 0 turns it off."),
    ParamField(
        "seed", "seed", int, "Same seed and parameters give the same text; blank draws a new seed each time.",
        blank_is_none=True, placeholder="random",
    ),
    ParamField("max_bars", "bars", int, "Stop after this many bars (lines); 0 means no limit."),
    # Bar controls (README, "Rhyme and flow"): a scheme, a rhyme word or syllables go bar by bar.
    ParamField(
        "rhyme_scheme", "scheme", str,
        "Rhyme scheme, a letter per bar, repeated: AABB, ABAB, ABBA, AAAA; x is a free bar. Blank: none.",
        blank_is_none=True, placeholder="off",
    ),
    ParamField(
        "rhyme_with", "rhyme word", str, "The first rhyme group ends on this word's sound (needs a scheme). Blank: none.",
        blank_is_none=True, placeholder="none",
    ),
    ParamField(
        "rhyme_vowels", "rhyme vowels", int,
        "Vowels a rhyme is made of (1-4): a group's bars end on the same last N vowel sounds, 'ma vie' / 'l'avis' at 2.",
    ),
    ParamField("syllables", "syllables", int, "Syllables per bar (spoken). Blank: any length.", blank_is_none=True, placeholder="off"),
    ParamField("syllable_tolerance", "± syllables", int, "A bar of syllables ± this many meets the target."),
    ParamField("candidates", "candidates", int, "Candidate bars drawn together for each bar; one meeting the targets is kept."),
    ParamField("steering", "steering", float, "On-device steering towards the targets, in logits; 0 turns it off."),
    ParamField("redraws", "redraws", int, "Times a bar is drawn again when no candidate meets its targets."),
    ParamField(
        "artist_guidance", "guidance", float,
        "Artist guidance: above 1 pushes towards the chosen artist's style (models with artist tokens); 1 turns it off.",
    ),
)
_DEFAULTS = SamplingParams()
NO_ARTIST = "none (unknown)"  # the selector's label for artist None
ARTIST_HINT = (
    "Write as this artist (the model was trained with artist tokens)."
    f" '{NO_ARTIST}' uses the token shared by artists with too few songs: no specific style."
)


def parse_field(field: ParamField, text: str) -> int | float | str | None:
    """The typed value of an input, or a FieldError naming the field."""
    text = text.strip()
    if not text and field.blank_is_none:
        return None
    if field.kind is str:
        return text
    try:
        return field.kind(text)
    except ValueError:
        kind = "a whole number" if field.kind is int else "a number"
        raise FieldError(field.name, f"{field.name} must be {kind}, got {text!r}") from None


def guidance_problem(params: SamplingParams, model_artists: Sequence[str] | None) -> FieldError | None:
    """Why ``params``' artist guidance cannot run, or None: a model without artist tokens
    (``model_artists`` empty; None while the model loads) or no artist chosen."""
    if not params.guided:
        return None
    weight = f"artist_guidance {params.artist_guidance:g}"
    if model_artists is not None and not model_artists:
        return FieldError("artist_guidance", f"{weight}: this model has no artist tokens to guide with; 1 turns guidance off")
    if params.artist is None:
        return FieldError(
            "artist_guidance", f"{weight} needs an artist: choose one in the artist list (guidance steers towards its style)"
        )
    return None


def problem_with(name: str, values: dict[str, object], model_artists: Sequence[str] | None = None) -> str | None:
    """The first problem SamplingParams (and ``guidance_problem``) finds with field ``name``
    among ``values``, or None.

    Problems of another field (``FieldError.field``) are set aside by resetting that field to
    its default.
    """
    values = dict(values)
    while True:
        try:
            problem = guidance_problem(SamplingParams(**values), model_artists)  # type: ignore[arg-type]  # checked here
            if problem is not None:
                raise problem
            return None
        except FieldError as error:
            culprit = error.field
            if culprit == name or culprit not in values or values[culprit] == getattr(_DEFAULTS, culprit):
                return str(error) if culprit == name else None
            values[culprit] = getattr(_DEFAULTS, culprit)


class FieldValidator(Validator):
    """Checks one input against SamplingParams, in the context of the panel's other values."""

    def __init__(self, field: ParamField, panel: ParamsPanel):
        super().__init__()
        self.field = field
        self.panel = panel

    def validate(self, value: str) -> ValidationResult:
        try:
            parsed = parse_field(self.field, value)
        except FieldError as error:
            return self.failure(str(error))
        problem = problem_with(self.field.name, {**self.panel.parsed_values(), self.field.name: parsed}, self.panel.model_artists)
        return self.failure(problem) if problem else self.success()


def format_value(value: int | float | str | None) -> str:
    return "" if value is None else str(value)


class ParamsPanel(VerticalGroup):
    """Labelled inputs for every field of FIELDS (and the artist selector once a model with
    artists is loaded), and a line for the first problem found."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        # The artist of an entry edited before the model (and so the selector) was ready.
        self._pending_artist: str | None = None
        self.model_artists: tuple[str, ...] | None = None  # LoadedModel.artists once loaded
        # The inputs by field name, and the selector once mounted: every change checks every
        # field against the others, and DOM queries for each would slow the first frame.
        self._inputs: dict[str, Input] = {}
        self._artist_select: Select[str | None] | None = None
        self._check_pending = False  # _check_all is scheduled

    def compose(self) -> ComposeResult:
        yield Static("Parameters", classes="panel-title")
        with Grid(id="param-grid"):
            for field in FIELDS:
                yield Label(field.label, classes="param-label")
                yield self._inputs.setdefault(field.name, Input(
                    format_value(getattr(_DEFAULTS, field.name)),
                    placeholder=field.placeholder,
                    type="integer" if field.kind is int else "number" if field.kind is float else "text",
                    validators=[FieldValidator(field, self)],
                    id=f"param-{field.name}",
                    tooltip=field.hint,
                    compact=True,
                    select_on_focus=True,
                ))
        yield Static("", id="param-error")

    def input_for(self, name: str) -> Input:
        return self._inputs[name]

    def parsed_values(self) -> dict[str, object]:
        """The artist, and the values of the inputs that parse as their type (others are left out)."""
        values: dict[str, object] = {"artist": self.artist}
        for field in FIELDS:
            try:
                values[field.name] = parse_field(field, self._inputs[field.name].value)
            except (FieldError, KeyError):  # KeyError: not composed yet
                pass
        return values

    @property
    def artist_select(self) -> Select[str | None] | None:
        """The artist selector; None until a model with artist tokens is loaded, and for any other."""
        return self._artist_select

    @property
    def artist(self) -> str | None:
        """The chosen artist (SamplingParams.artist): a known name, or None for no specific one."""
        select = self.artist_select
        if select is None:
            return self._pending_artist
        return select.value if isinstance(select.value, str) else None  # allow_blank=False: never blank

    @artist.setter
    def artist(self, artist: str | None) -> None:
        """Choose ``artist``; the caller makes sure the model knows it (before the model is
        ready, it waits for ``show_artists``)."""
        artist = None if artist == UNKNOWN_ARTIST else artist  # one token: one choice
        select = self.artist_select
        if select is None:
            self._pending_artist = artist
        else:
            select.value = artist

    def show_artists(self, artists: Sequence[str]) -> None:
        """Add the selector for a model's ``artists`` (LoadedModel.artists: names, then "unknown"),
        set to the artist of an entry edited meanwhile; nothing for a model without artists."""
        self.model_artists = tuple(artists)
        if not artists or self.artist_select is not None:
            self._check_all()  # guidance on a model without artists is now known to be refused
            return
        options = [(NO_ARTIST, None), *((name, name) for name in artists if name != UNKNOWN_ARTIST)]
        choice = self._pending_artist if self._pending_artist in artists else None
        select = Select(options, value=choice, allow_blank=False, id="param-artist", tooltip=ARTIST_HINT, compact=True)
        self._artist_select = select
        self.query_one("#param-grid", Grid).mount(Label("artist", classes="param-label"), select, before=0)

    def sampling_params(self) -> SamplingParams:
        """The panel's values as SamplingParams; a FieldError names the first bad field."""
        values: dict[str, Any] = {field.name: parse_field(field, self.input_for(field.name).value) for field in FIELDS}
        params = SamplingParams(**values, artist=self.artist)
        problem = guidance_problem(params, self.model_artists)
        if problem is not None:
            raise problem
        return params

    def show_params(self, params: SamplingParams) -> None:
        """Fill every input and the artist from ``params`` (editing an entry of the history)."""
        for field in FIELDS:
            self.input_for(field.name).value = format_value(getattr(params, field.name))
        self.artist = params.artist

    def focus_problem(self, error: FieldError) -> None:
        """Focus the input of the field ``error`` names (none for a field without an input)."""
        if error.field in self._inputs:
            self.input_for(error.field).focus()

    def show_problem(self, error: FieldError) -> None:
        """Show a problem the sampler found with these values (no room for one bar) on the
        field it names, until a value changes."""
        self.query_one("#param-error", Static).update(str(error))
        self.add_class("-invalid")
        if error.field in self._inputs:
            self.input_for(error.field).add_class("-invalid")
        self.focus_problem(error)

    @on(Input.Changed)
    @on(Select.Changed)
    def _values_changed(self) -> None:
        """Check everything once the changes in flight are in: mounting the panel (each input
        reports its first value) or showing an entry changes every input at once."""
        if not self._check_pending:
            self._check_pending = True
            self.call_later(self._check_all)

    def _check_all(self) -> None:
        """Check every input again (one value can fix or break another; the artist decides
        whether guidance can run) and show the first problem of the whole set."""
        self._check_pending = False
        for field in FIELDS:
            widget = self.input_for(field.name)
            widget.validate(widget.value)
        try:
            self.sampling_params()
        except FieldError as error:
            self.query_one("#param-error", Static).update(str(error))
            self.add_class("-invalid")
        else:
            self.query_one("#param-error", Static).update("")
            self.remove_class("-invalid")

