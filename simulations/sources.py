"""The source documents the lab's figures come from, described as a reader can recognise them.

A page never names a source by an authoring code; it names the paper and its table, or describes
the document plainly with `cite` ("the prompting-and-LoRA lecture"). One place, so that
every page describes the same document the same way.
"""

LECTURE = "the prompting-and-LoRA lecture"
COURSE = "the LoRA course"
PAPER_TOUR = "the LoRA paper walk-through"
ARTICLE = "the LoRA efficiency article"
DERIVATIONS = "the PEFT derivations post"

DOCUMENTS = {"000": LECTURE, "001": COURSE, "002": PAPER_TOUR, "003": ARTICLE, "004": DERIVATIONS}


def cite(document: str, where: str = "") -> str:
    """The plain description of `document` ("000" … "004"), with the part of it cited ("chapter 3")."""
    text = DOCUMENTS[document]
    return f"{text}, {where}" if where else text
