"""A learner's own CSV, checked before anything is stored: the rules of POST /api/datasets.

Pure Python (no Django): `parse_csv(raw)` takes the file's bytes and returns its examples and
labels, or raises UploadError (Invalid, 400) or UploadTooLarge (TooLarge, 413) with a message the
learner can act on (it names the line, the byte, the column, the character or the count that is
wrong). Which characters a label or a name may not hold, and when two labels look alike, is
peftlab/classroom/names.py's.
`split` draws the seeded train/validation split that is stored with the examples.

Cells are kept exactly as written. Nothing here (nor anywhere in the lab) evaluates a cell: a
text such as ``=cmd()|' /C calc'!A0`` is a sentence like any other, stored, shown and trained on
as those characters.

The rules are the constants below; docs/tour.md ("Train on your own CSV") lists them for learners.
"""

from __future__ import annotations

import csv
import io
import random
import re
from dataclasses import dataclass

from peftlab.classroom import names
from peftlab.errors import Invalid, TooLarge

MAX_BYTES = 2_000_000  # the file, as uploaded (413 past it)
MAX_ROWS = 5_000  # examples, the header not counted
MIN_LABELS, MAX_LABELS = 2, 20  # distinct labels
MIN_PER_LABEL = 4  # examples of each label: both splits get some of every label
MAX_TEXT_CHARS = 1_000  # characters of one text cell
MAX_LABEL_CHARS = 40  # characters of one label
MAX_NAME_CHARS = 80  # the dataset's name
HEADER = ("text", "label")
VAL_FRACTION = 0.2  # of each label's examples, at least 1 (and at least 1 left to train on)
SPLIT_SEED = 0

TRAIN, VAL = "train", "val"


class UploadError(Invalid):
    """An upload whose file or name breaks a rule; nothing is stored."""


class UploadTooLarge(TooLarge):
    """A file larger than MAX_BYTES; nothing is stored."""


@dataclass(frozen=True)
class ParsedCsv:
    rows: list[tuple[str, int]]  # (text, index into labels), in the file's order
    labels: list[str]  # in order of first appearance

    def counts(self) -> list[int]:
        """Examples per label, in the order of `labels`."""
        out = [0] * len(self.labels)
        for _, label in self.rows:
            out[label] += 1
        return out


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def size_error(size: int) -> UploadTooLarge:
    """413 for a file of `size` bytes (past MAX_BYTES)."""
    shown = _mb(size)
    if float(shown.split()[0]) * 1_000_000 <= MAX_BYTES:  # "2.0 MB; at most 2 MB" would puzzle
        shown = f"{size:,} bytes"
    return UploadTooLarge(
        f"the file is {shown}; at most {MAX_BYTES / 1_000_000:g} MB "
        f"({MAX_BYTES:,} bytes). Keep fewer rows (at most {MAX_ROWS:,}) or shorter texts."
    )


def check_size(size: int) -> None:
    if size > MAX_BYTES:
        raise size_error(size)


def _decode(raw: bytes) -> str:
    bom = raw.startswith(b"\xef\xbb\xbf")  # Excel's "CSV UTF-8" starts with one: fine
    body = raw[3:] if bom else raw
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        position = exc.start + (3 if bom else 0)
        line = raw.count(b"\n", 0, position) + 1
        raise UploadError(
            f"the file is not UTF-8 (byte 0x{raw[position]:02x} at position {position}, line {line}). "
            'Save it as "CSV UTF-8" (Excel, LibreOffice and Google Sheets all offer it).'
        ) from None


def _check_header(header: list[str]) -> None:
    got = [cell.strip() for cell in header]
    if tuple(got) == HEADER:
        return
    shown = ",".join(header)
    missing = [c for c in HEADER if c not in got]
    extra = [c for c in got if c not in HEADER]
    extra += [c for c in HEADER if got.count(c) > 1]  # a column named twice
    parts = []
    if missing:
        parts.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if extra:
        names = ", ".join(repr(c) if c else "(an unnamed column)" for c in extra)
        parts.append(f"extra column{'s' if len(extra) > 1 else ''} {names}")
    if not parts:
        parts.append(f"the columns are in the order {shown!r}")
    hint = ""
    if len(got) == 1 and any(sep in got[0] for sep in (";", "\t", "|")):
        hint = " The file seems separated by something other than commas: save it with commas."
    raise UploadError(f"the first line must be the header text,label (got {shown!r}): {'; '.join(parts)}.{hint}")


def _clean_cell(value: str) -> str:
    return value.strip()


# Unicode's control characters (category Cc) but tab and line ends: a NUL byte, a bell...
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _check_label(label: str, line: int, seen: dict[str, tuple[str, int]]) -> None:
    """A label holds no invisible or bidi control character (names.refuse_hidden), and a new
    label does not look like an earlier one: `seen` maps each label's skeleton to the label and
    its first line, and gets this one."""
    try:
        names.refuse_hidden(
            label, f"line {line}: the label {label!r}", remedy="delete it from the file and upload it again"
        )
    except names.HiddenCharacter as exc:
        raise UploadError(str(exc)) from None
    key = names.skeleton(label)
    other, other_line = seen.setdefault(key, (label, line))
    if other != label:
        raise UploadError(
            f"line {line}: the label {label!r} looks like the label {other!r} of line {other_line}, a "
            f"learner could take them for one, but they are two texts that differ only in case, width "
            f"or lookalike characters ({names.difference(label, other)}). Write one label the same way "
            "on every line, or rename one of the two."
        )


def parse_csv(raw: bytes) -> ParsedCsv:
    """The examples of an uploaded CSV with the header ``text,label``, or UploadError.

    Checked in this order: size (413), empty, UTF-8 (a byte-order mark is fine), the header,
    every row (two non-empty cells; text and label lengths; a new label without an invisible or
    bidi control character and not looking like an earlier one), the number of rows, then the
    labels (at least MIN_LABELS, at most MAX_LABELS, each with MIN_PER_LABEL examples). The text is
    kept as written (surrounding spaces trimmed); so is a label.
    """
    check_size(len(raw))
    if not raw.strip():
        raise UploadError("the file is empty: it needs the header text,label and one example per line")
    content = _decode(raw)
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # blank lines before the header
        if header is None:
            raise UploadError("the file is empty: it needs the header text,label and one example per line")
        _check_header(header)
        rows: list[tuple[str, int]] = []
        labels: dict[str, int] = {}
        lookalikes: dict[str, tuple[str, int]] = {}  # skeleton: (label, first line)
        count = 0
        for row in reader:
            line = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue  # a blank line
            count += 1
            if count > MAX_ROWS:
                continue  # counted, to say how many there are
            if len(row) != 2:
                raise UploadError(
                    f"line {line}: {len(row)} cells, expected 2 (text,label). A text that contains "
                    'a comma must be in double quotes: "Good, but slow",positive'
                )
            text, label = _clean_cell(row[0]), _clean_cell(row[1])
            if not text:
                raise UploadError(f"line {line}: the text is empty")
            if not label:
                raise UploadError(f"line {line}: the label is empty")
            if len(text) > MAX_TEXT_CHARS:
                raise UploadError(
                    f"line {line}: the text has {len(text):,} characters; at most "
                    f"{MAX_TEXT_CHARS:,} (the model reads the first 128 tokens anyway)"
                )
            if len(label) > MAX_LABEL_CHARS:
                raise UploadError(f"line {line}: the label has {len(label):,} characters; at most {MAX_LABEL_CHARS}")
            if _has_control(text) or _has_control(label):
                raise UploadError(
                    f"line {line}: a cell holds a control character (such as a NUL byte); is this really a text file?"
                )
            if label not in labels:
                _check_label(label, line, lookalikes)
            index = labels.setdefault(label, len(labels))
            if len(labels) > MAX_LABELS:
                raise UploadError(
                    f"the file has more than {MAX_LABELS} different labels ({label!r} on line {line} "
                    f"is the {_ordinal(MAX_LABELS + 1)}); at most {MAX_LABELS}"
                )
            rows.append((text, index))
    except csv.Error as exc:
        raise UploadError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    if count == 0:
        raise UploadError("the file is empty: it has the header text,label but no examples")
    if count > MAX_ROWS:
        raise UploadError(f"the file has {count:,} examples; at most {MAX_ROWS:,}")
    parsed = ParsedCsv(rows=rows, labels=list(labels))
    if len(parsed.labels) < MIN_LABELS:
        raise UploadError(
            f"every example has the label {parsed.labels[0]!r}: a classifier needs at least "
            f"{MIN_LABELS} different labels to learn anything"
        )
    short = [(label, n) for label, n in zip(parsed.labels, parsed.counts()) if n < MIN_PER_LABEL]
    if short:
        listed = ", ".join(f"{label!r} has {n}" for label, n in short)
        raise UploadError(
            f"each label needs at least {MIN_PER_LABEL} examples, so that both the training and the "
            f"validation split have some: {listed}"
        )
    return parsed


def clean_name(name: str | None, file_name: str | None = None) -> str:
    """The dataset's name: what the learner typed, else the file's name without .csv."""
    value = (name or "").strip()
    if not value and file_name:
        value = file_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        if value.lower().endswith(".csv"):
            value = value[:-4]
        value = value.strip()[:MAX_NAME_CHARS]
    if not value:
        raise UploadError("give the dataset a name")
    if len(value) > MAX_NAME_CHARS:
        raise UploadError(f"the name has {len(value)} characters; at most {MAX_NAME_CHARS}")
    if _has_control(value) or "\n" in value or "\r" in value or "\t" in value:
        raise UploadError("the name must be one line of text")
    remedy = (
        "type the name without that character"
        if (name or "").strip()
        else "type a name for the dataset, or rename the file without that character"
    )
    try:
        return names.refuse_hidden(value, f"the name {value!r}", remedy=remedy)
    except names.HiddenCharacter as exc:
        raise UploadError(str(exc)) from None


def split(parsed: ParsedCsv, seed: int = SPLIT_SEED) -> list[str]:
    """TRAIN or VAL for each row, in the file's order: per label, a seeded shuffle puts
    round(VAL_FRACTION × count) of its examples (at least 1, and never all) in validation."""
    rng = random.Random(seed)
    by_label: dict[int, list[int]] = {}
    for index, (_, label) in enumerate(parsed.rows):
        by_label.setdefault(label, []).append(index)
    sides = [TRAIN] * len(parsed.rows)
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        n_val = min(max(1, round(VAL_FRACTION * len(members))), len(members) - 1)
        for index in members[:n_val]:
            sides[index] = VAL
    return sides
