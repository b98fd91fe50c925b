"""Lookalike names (issue 19 section 6): a nickname written with a Cyrillic "о" or in fullwidth
letters is the nickname it looks like, and nicknames, class names, dataset names and labels
refuse invisible and bidi control characters with a 400 that names the character.

The key is peftlab/classroom/names.py's skeleton (NFKC, case folding, Unicode's confusables skeleton);
the refusals go through real requests (a browser-like client, CSRF enforced), and each leaves
the tables as they were."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from peftlab.classroom import names
from peftlab.classroom.models import Classroom, Student
from peftlab.runs.models import Dataset, DatasetExample
from tests.support.classrooms import browser, classroom, join, student_browser, teacher_browser

pytestmark = pytest.mark.django_db

CYRILLIC_A, CYRILLIC_O, GREEK_ALPHA = "\u0410", "\u043e", "\u0391"


def page(response) -> str:
    return response.content.decode()


# --- the skeleton -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lookalike",
    [
        f"{CYRILLIC_A}na",  # Cyrillic capital A
        f"An{chr(0x0430)}",  # Cyrillic small a
        f"{GREEK_ALPHA}na",  # Greek capital alpha
        "\uff21\uff4e\uff41",  # fullwidth
        "ANA",
        "ana",
        "aNa",  # case
    ],
)
def test_lookalikes_of_a_name_have_its_skeleton(lookalike):
    assert lookalike != "Ana" and names.skeleton(lookalike) == names.skeleton("Ana")


@pytest.mark.parametrize(
    "name, lookalike",
    [
        ("fiona", "\ufb01ona"),  # the fi ligature (NFKC)
        ("Zoe", f"Z{CYRILLIC_O}e"),
        ("Zoe", "Z\u03bfe"),  # Greek omicron
        ("Bob", "B0b"),  # digit zero: its prototype is a capital O, folded again
        ("Bill", "Bi11"),  # digit one looks like a small l
        ("Emma", "Ernrna"),  # "rn" looks like "m"
        ("Zoë", "Zoe\u0308"),  # composed or not
        ("\u2764", "\u2764\ufe0f"),  # a heart with or without the emoji selector
    ],
)
def test_compatibility_forms_and_confusables_meet(name, lookalike):
    assert names.skeleton(name) == names.skeleton(lookalike)


@pytest.mark.parametrize(
    "name, other",
    [
        ("Ana", "Anna"),
        ("Ana", "Ama"),
        ("Ana", "Ana Lee"),
        ("Emile", "Émile"),
        ("Ben", "Bea"),
        ("李雷", "李雪"),
    ],
)
def test_names_that_differ_to_the_eye_stay_different(name, other):
    assert names.skeleton(name) != names.skeleton(other)


def test_the_prototypes_are_unicodes_confusables_table():
    table = names.prototypes()
    assert len(table) > 6000  # every line of confusables.txt
    assert table[chr(0x0430)] == "a" and table["m"] == "rn" and table["0"] == "O"
    assert not set(table.values()) & set(table)  # a prototype is never mapped further


# --- hidden characters ------------------------------------------------------------------------------
HIDDEN = {
    "\u200b": "ZERO WIDTH SPACE",
    "\u200c": "ZERO WIDTH NON-JOINER",
    "\u200d": "ZERO WIDTH JOINER",
    "\u2060": "WORD JOINER",
    "\ufeff": "ZERO WIDTH NO-BREAK SPACE",
    "\u00ad": "SOFT HYPHEN",
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    "\u061c": "ARABIC LETTER MARK",
    "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202b": "RIGHT-TO-LEFT EMBEDDING",
    "\u202c": "POP DIRECTIONAL FORMATTING",
    "\u202d": "LEFT-TO-RIGHT OVERRIDE",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u2068": "FIRST STRONG ISOLATE",
    "\u2069": "POP DIRECTIONAL ISOLATE",
    "\u034f": "COMBINING GRAPHEME JOINER",
    "\u115f": "HANGUL CHOSEONG FILLER",
    "\u1160": "HANGUL JUNGSEONG FILLER",
    "\u3164": "HANGUL FILLER",
    "\uffa0": "HALFWIDTH HANGUL FILLER",
    "\u180e": "MONGOLIAN VOWEL SEPARATOR",
    "\ufe00": "VARIATION SELECTOR-1",
    "\U000e0100": "VARIATION SELECTOR-17",
    "\U000e0041": "TAG LATIN CAPITAL LETTER A",
    "\u2800": "BRAILLE PATTERN BLANK",
    "\x07": "",
    "\x7f": "",
}


@pytest.mark.parametrize("char, name", HIDDEN.items(), ids=[f"U+{ord(c):04X}" for c in HIDDEN])
def test_each_hidden_character_is_refused_by_code_point_and_name(char, name):
    with pytest.raises(names.HiddenCharacter) as refused:
        names.refuse_hidden(f"An{char}a", "the nickname")
    message = str(refused.value)
    assert message.startswith("the nickname contains ") and message.endswith("; type it without that character")
    assert f"(U+{ord(char):04X} {name})".replace(" )", ")") in message and refused.value.char == char


def test_bidi_controls_are_called_what_they_do():
    with pytest.raises(names.HiddenCharacter, match="a character that reverses or reorders the text around it"):
        names.refuse_hidden("abc\u202e", "the name")
    with pytest.raises(names.HiddenCharacter, match="an invisible character"):
        names.refuse_hidden("abc\u200b", "the name")


@pytest.mark.parametrize("text", ["Ana Lee", "Zoë", "O'Brien-Smith", "李雷", "Ана", "\u2764\ufe0f Ana", "\U0001f44d"])
def test_visible_names_pass(text):
    assert names.refuse_hidden(text, "the nickname") == text


def test_the_emoji_selector_passes_after_a_symbol_only_and_whitespace_only_where_allowed():
    with pytest.raises(names.HiddenCharacter, match="U\\+FE0F VARIATION SELECTOR-16"):
        names.refuse_hidden("Ana\ufe0f", "the nickname")
    assert names.refuse_hidden("two\tcells", "the text", allow="\t") == "two\tcells"
    with pytest.raises(names.HiddenCharacter, match="a control character \\(U\\+0009\\)"):
        names.refuse_hidden("two\tcells", "the text")


# --- nicknames: real joins --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lookalike",
    [f"{CYRILLIC_A}na", "\uff21\uff4e\uff41", f"{GREEK_ALPHA}na", f"An{chr(0x0430)}"],
    ids=["cyrillic", "fullwidth", "greek", "cyrillic-small"],
)
def test_a_lookalike_of_a_taken_nickname_is_taken(room, lookalike):
    _, ana = student_browser(room, "Ana")
    other = browser()
    response = join(other, room.code, lookalike)
    assert response.status_code == 409
    assert "that nickname, or one that looks the same, is taken in this class" in page(response)
    assert list(Student.objects.all()) == [ana] and "classroom_student" not in other.session
    # In another class it is another student, stored as typed.
    second = classroom(room.teacher, "Second")
    assert join(other, second.code, lookalike).status_code == 302
    assert Student.objects.get(classroom=second).nickname == lookalike


def test_the_same_browser_gets_its_own_student_back_under_a_lookalike(room):
    client, ana = student_browser(room, "Ana")
    client.post("/leave/")
    assert join(client, room.code, f"{CYRILLIC_A}na").status_code == 302
    assert client.session["classroom_student"] == ana.pk
    assert list(Student.objects.values_list("nickname", flat=True)) == ["Ana"]  # as first typed


@pytest.mark.parametrize(
    "nickname, shown",
    [
        ("An\u200ba", "U+200B ZERO WIDTH SPACE"),
        ("\u202eanA", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("Ana\u3164", "U+3164 HANGUL FILLER"),
        ("A\u00adna", "U+00AD SOFT HYPHEN"),
    ],
)
def test_a_nickname_with_a_hidden_character_is_a_400_that_names_it(room, nickname, shown):
    client = browser()
    response = join(client, room.code, nickname)
    assert response.status_code == 400
    assert "the nickname contains" in page(response) and shown in page(response)
    assert "type it without that character" in page(response)
    assert Student.objects.count() == 0 and "classroom_student" not in client.session


def test_a_hidden_character_cannot_make_a_second_ana(room):
    student_browser(room, "Ana")
    response = join(browser(), room.code, "Ana\u200d")
    assert response.status_code == 400 and "U+200D ZERO WIDTH JOINER" in page(response)
    assert Student.objects.count() == 1


def test_the_database_holds_one_student_per_lookalike_key_and_class(room):
    Student.objects.create(classroom=room, nickname="Ana")
    with pytest.raises(IntegrityError), transaction.atomic():
        Student.objects.create(classroom=room, nickname=f"{CYRILLIC_A}na")
    Student.objects.create(classroom=classroom(room.teacher, "Second"), nickname=f"{CYRILLIC_A}na")
    assert sorted(Student.objects.values_list("nickname_key", flat=True)) == ["ana", "ana"]


# --- class names ------------------------------------------------------------------------------------
def test_a_class_name_with_a_bidi_control_is_a_400_that_names_it(ada):
    client = teacher_browser(ada)
    response = client.post("/classes/", {"name": "NLP \u202eranimes"})
    assert response.status_code == 400
    assert (
        "the name of the class contains a character that reverses or reorders the text around it "
        "(U+202E RIGHT-TO-LEFT OVERRIDE); type it without that character" in page(response)
    )
    assert Classroom.objects.count() == 0
    assert client.post("/classes/", {"name": "NLP seminar"}).status_code == 302


# --- uploaded datasets ------------------------------------------------------------------------------
def csv_of(*labels: str, per_label: int = 5) -> bytes:
    lines = ["text,label"] + [
        f"example {i} of the {n}th label,{label}" for n, label in enumerate(labels) for i in range(per_label)
    ]
    return ("\n".join(lines) + "\n").encode()


def upload(client, data: bytes, name: str = "my data"):
    return client.post(
        "/api/datasets", {"file": SimpleUploadedFile("mine.csv", data, content_type="text/csv"), "name": name}
    )


def nothing_stored() -> bool:
    return Dataset.objects.count() == 0 and DatasetExample.objects.count() == 0


def test_a_label_with_a_zero_width_space_is_a_400_naming_it_and_its_line(csrf_client):
    response = upload(csrf_client, csv_of("positive", "positive\u200b"))
    assert response.status_code == 400
    assert response.json()["error"] == (
        "line 7: the label 'positive\\u200b' contains an invisible character (U+200B ZERO WIDTH SPACE); "
        "delete it from the file and upload it again"
    )
    assert nothing_stored()


def test_a_label_with_a_right_to_left_mark_is_a_400(csrf_client):
    response = upload(csrf_client, csv_of("\u200fpositive", "negative"))
    assert response.status_code == 400 and "line 2:" in response.json()["error"]
    assert "(U+200F RIGHT-TO-LEFT MARK)" in response.json()["error"]
    assert nothing_stored()


@pytest.mark.parametrize(
    "lookalike, where",
    [
        (
            f"p{CYRILLIC_O}sitive",
            "its character 2 is U+043E CYRILLIC SMALL LETTER O where the other has U+006F LATIN SMALL LETTER O",
        ),
        ("\uff50ositive", "its character 1 is U+FF50 FULLWIDTH LATIN SMALL LETTER P"),
        ("Positive", "its character 1 is U+0050 LATIN CAPITAL LETTER P"),
    ],
)
def test_two_labels_that_look_alike_are_a_400_naming_both(csrf_client, lookalike, where):
    response = upload(csrf_client, csv_of("positive", "negative", lookalike))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith(f"line 12: the label {lookalike!r} looks like the label 'positive' of line 2")
    assert where in error and "Write one label the same way on every line, or rename one of the two." in error
    assert nothing_stored()


def test_labels_that_differ_to_the_eye_are_taken(csrf_client):
    response = upload(csrf_client, csv_of("café", "cafe", "\u2764\ufe0f"))
    assert response.status_code == 201, response.content
    assert response.json()["labels"] == ["café", "cafe", "\u2764\ufe0f"]


def test_a_dataset_name_with_a_bidi_isolate_is_a_400_naming_it(csrf_client):
    response = upload(csrf_client, csv_of("positive", "negative"), name="reviews\u2066")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "the name 'reviews\\u2066' contains a character that reverses or reorders the text around it "
        "(U+2066 LEFT-TO-RIGHT ISOLATE); type the name without that character"
    )
    assert nothing_stored()


def test_a_file_name_with_a_hidden_character_asks_for_a_name(csrf_client):
    """Django drops the file name's non-printable characters (U+200B...), not a Hangul filler."""
    data = SimpleUploadedFile("reviews\u3164.csv", csv_of("positive", "negative"), content_type="text/csv")
    response = csrf_client.post("/api/datasets", {"file": data})
    assert response.status_code == 400 and "(U+3164 HANGUL FILLER)" in response.json()["error"]
    assert "type a name for the dataset, or rename the file" in response.json()["error"]
    assert nothing_stored()


# --- the data migration: students who joined under lookalikes before keys ----------------------------
def migrate(target=None):
    """The test database migrated to `target`, or to the latest migrations of every app."""
    executor = MigrationExecutor(connection)
    executor.migrate(target or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_students_who_joined_under_lookalikes_before_keys_keep_their_own_nicknames(room):
    ana_browser, ana = student_browser(room, "Ana")
    twin_browser, twin = student_browser(room, "Bob")
    _, elsewhere = student_browser(classroom(room.teacher, "Second"), "Ana")
    # Before keys, only the lower case was unique: "Аna" (a Cyrillic А) joined beside "Ana".
    migrate([("classroom", "0001_initial")])
    Student.objects.filter(pk=twin.pk).update(nickname=f"{CYRILLIC_A}na")
    migrate()
    keys = dict(Student.objects.values_list("pk", "nickname_key"))
    assert keys == {ana.pk: "ana", twin.pk: f"ana\n{twin.pk}", elsewhere.pk: "ana"}
    # Each browser still gets its own student back; nobody else gets either.
    for client, student, nickname in ((ana_browser, ana, "Ana"), (twin_browser, twin, f"{CYRILLIC_A}na")):
        client.post("/leave/")
        assert join(client, room.code, nickname).status_code == 302
        assert client.session["classroom_student"] == student.pk
    for nickname in ("Ana", f"{CYRILLIC_A}na", "ANA"):
        assert join(browser(), room.code, nickname).status_code == 409
    assert Student.objects.count() == 3
