"""The unstressed function words of French, which never carry a bar's rhyme.

A rapper stresses the last word of a bar; an article, a preposition, a conjunction, a clitic
pronoun or a possessive or demonstrative determiner is said unstressed, leaning on the word
after it, so a bar that ends on one ("j'sais pas c'que t'attends de", "toute ma vie et") has no
rhyme a listener hears, even when its sound matches. The sampler's steering and its host check
(``jaxrap.sample``) and the scheme accuracy of ``jaxrap.evaluate.flow_metrics`` refuse such a
rhyme, at any number of rhyme vowels; ``jaxrap eval`` reports the share of bars ending on one.
The rhyme finder lists none of them.

The list holds the words of those classes a bar can end on with another reading left out: a
word whose common other reading is stressed at the end of a bar stays allowed, since the
spelling cannot tell them apart and a false refusal costs a good rhyme:

- articles ``le la les du des au aux``; ``un``/``une`` are left out: at the end of a bar they are
  numbers or pronouns ("le 3-1", "j'en veux un");
- prepositions ``à de en dans par pour avec sans chez``; left out: ``sous`` (money: "des sous"),
  ``sur`` (written for "sûr": "ça c'est sur"), ``vers`` (verses), ``entre`` (the verb),
  ``contre``/``après``/``avant``/``depuis`` (adverbs there: "être contre");
- conjunctions ``et ou ni mais car que comme lorsque puisque quoique``; left out: ``or`` (gold),
  ``si`` and ``quand`` (stressed in answers and questions: "mais si !", "c'est quand ?"),
  ``donc``;
- clitic pronouns ``je tu il ils on me te se ne y leur`` (and ``le la les en`` above); the
  tonic pronouns ``moi toi lui elle nous vous eux`` are stressed and stay allowed;
- possessive determiners ``mon ma ta sa mes tes ses notre votre nos vos leur leurs`` (``son``
  and ``ton`` are left out: "le son", "sur ce ton"), demonstrative ones ``ce cet cette ces``.

A clitic joined to the verb before it by a hyphen is stressed ("dis-le", "vas-y", "prends-en",
"dit-il") and carries a rhyme (``jaxrap.phonetics.rhyme.bar_ending`` reads the hyphen); elided
forms (``l'``, ``d'``, ``qu'``) never end a bar's spoken words. On the real slice, 1.2% of the
47,409 train bars and 0.8% of the 5,843 validation bars end on a word of the list (``et``,
``de``, ``comme``, ``la``, ``que`` the most often).
"""

from __future__ import annotations

FUNCTION_WORDS = frozenset(
    "le la les du des au aux"
    " à de en dans par pour avec sans chez"
    " et ou ni mais car que comme lorsque puisque quoique"
    " je tu il ils on me te se ne y leur"
    " mon ma ta sa mes tes ses notre votre nos vos leurs"
    " ce cet cette ces".split()
)


def is_function_word(word: str) -> bool:
    """Whether ``word`` (lowercase, NFC, as ``SpokenWord.text``) is an unstressed function word."""
    return word in FUNCTION_WORDS
