"""The course outline: chapters and the playgrounds (P1–P24) they hold.

A playground is live when its template exists under templates/simulations/playgrounds/; until
then its page says that it is coming. This is the one list the home page and the URLs read.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class Playground:
    pid: str
    slug: str
    title: str
    summary: str

    @property
    def template(self) -> str:
        return f"simulations/playgrounds/{self.slug}.html"

    @property
    def live(self) -> bool:
        return (Path(settings.BASE_DIR) / "templates" / self.template).exists()


@dataclass(frozen=True)
class Chapter:
    number: int
    title: str
    summary: str
    playgrounds: tuple[Playground, ...]


CHAPTERS = (
    Chapter(
        1,
        "What fine-tuning costs",
        "Why updating every weight of a large model is expensive in compute, memory and storage.",
        (
            Playground(
                "P1",
                "cost-of-fine-tuning",
                "Cost of fine-tuning",
                "GPU-hours, cost and checkpoint size by model size, times tasks and tuning runs.",
            ),
            Playground(
                "P2",
                "memory-calculator",
                "Memory calculator",
                "Weights, gradients, Adam state and activations for full fine-tuning, LoRA and QLoRA.",
            ),
        ),
    ),
    Chapter(
        2,
        "Adapting without training",
        "What prompting alone can do, and where it breaks.",
        (
            Playground(
                "P3",
                "in-context-learning",
                "In-context learning",
                "Zero-, one- and few-shot prompts against the context window.",
            ),
            Playground(
                "P4",
                "prompt-sensitivity",
                "Prompt sensitivity and calibration",
                "Label words, separators, ordering, and contextual calibration.",
            ),
            Playground(
                "P5",
                "chain-of-thought",
                "Chain of thought",
                "Step-by-step reasoning on a word problem, and where it helps.",
            ),
        ),
    ),
    Chapter(
        3,
        "Why small updates suffice",
        "Sparse subnetworks and the low intrinsic dimension of fine-tuning.",
        (
            Playground(
                "P6",
                "lottery-ticket",
                "Lottery ticket",
                "Prune a small trained network and watch accuracy against sparsity.",
            ),
            Playground(
                "P7",
                "intrinsic-dimension",
                "Intrinsic dimension",
                "Train in a random d-dimensional subspace; accuracy against d.",
            ),
        ),
    ),
    Chapter(
        4,
        "Adapters",
        "Small bottleneck layers inserted into a frozen network.",
        (
            Playground(
                "P8", "adapter-block", "Adapter block", "The bottleneck, its size m, and 2·d·m parameters per adapter."
            ),
        ),
    ),
    Chapter(
        5,
        "Low rank and LoRA",
        "The weight update is low-rank: parameterise it as B·A.",
        (
            Playground(
                "P9",
                "low-rank",
                "Low-rank approximation",
                "A matrix, its best rank-r reconstruction, and the error against r.",
            ),
            Playground(
                "P10",
                "lora-forward",
                "LoRA forward path",
                "x through the frozen W and through A then B; h = Wx + (α/r)·BAx.",
            ),
            Playground(
                "P11",
                "parameter-counter",
                "Parameter counter",
                "r and d, 2r/d, and whole-model counts for target modules.",
            ),
            Playground(
                "P12", "zero-start", "Zero start", "B starts at zero, so training starts exactly at the base model."
            ),
            Playground(
                "P16",
                "low-rank-lab",
                "Low-rank lab",
                "A task with a true intrinsic rank: the error plateaus at that rank.",
            ),
        ),
    ),
    Chapter(
        6,
        "Serving many tasks",
        "One base model, many small adapters: swap or merge.",
        (
            Playground(
                "P13",
                "merge-and-swap",
                "Merge and swap",
                "Swap adapters, merge them into W, identical outputs, measured latency.",
            ),
            Playground("P20", "freeze-attach-merge", "Freeze, attach, merge", "An animation of the LoRA life cycle."),
        ),
    ),
    Chapter(
        7,
        "QLoRA",
        "A 4-bit base model with LoRA on top.",
        (
            Playground(
                "P14",
                "qlora",
                "NF4 and double quantisation",
                "NF4 against int4 on Gaussian weights; bits per parameter; memory by model size.",
            ),
        ),
    ),
    Chapter(
        8,
        "The PEFT family",
        "Where each method puts its trainable parameters, and what it costs.",
        (
            Playground(
                "P15",
                "family-map",
                "PEFT family map",
                "LoRA, adapters, prefix, prompt, IA3, BitFit and DoRA on one transformer block.",
            ),
            Playground(
                "P19", "method-spectrum", "Method spectrum", "Cost against accuracy; GLUE results for RoBERTa-base."
            ),
        ),
    ),
    Chapter(
        9,
        "Choosing and comparing",
        "Real runs side by side, and a guide to picking a method.",
        (
            Playground(
                "P17",
                "four-method-race",
                "Four-method race",
                "Full FT, adapter, LoRA and prompt tuning trained side by side.",
            ),
            Playground("P18", "decision-tree", "Decision tree", "Answer a few questions; a method is recommended."),
            Playground(
                "P23",
                "rank-vs-data",
                "Rank against data size",
                "A real rank sweep on small and larger data; overfitting shows.",
            ),
            Playground("P24", "target-modules", "Target modules", "Real runs with Q, QV, QKVO and all modules."),
        ),
    ),
    Chapter(
        10,
        "Review",
        "Check what you learned.",
        (
            Playground("P21", "quiz", "Quizzes", "A quiz per chapter, with explanations and common misconceptions."),
            Playground("P22", "cheat-sheet", "Cheat sheet", "The formulas and rules of thumb on one page."),
        ),
    ),
)


@cache
def playgrounds_by_slug() -> dict[str, tuple[Chapter, Playground]]:
    return {pg.slug: (ch, pg) for ch in CHAPTERS for pg in ch.playgrounds}


def chapter_by_number(number: int) -> Chapter | None:
    return next((ch for ch in CHAPTERS if ch.number == number), None)
