"""The fine-tuning methods the lab trains: one record a method, holding every fact about it.

Each record names the method, says what it trains, lists the run parameters a user may set (with
their bounds), how its trained part is saved, whether its update merges into the base weights,
whether its training batches pack, and the colour the pages draw it in. Every list of methods
elsewhere is read from METHODS; nothing restates it.

What each method needs beyond facts lives in one place each, keyed by the method's name:
- its builder (torch): workers/builders.py BUILDERS;
- its trainable-parameter formula: simulations/params.py FORMULAS;
- its activations in the memory model of the lab's runs: simulations/memory.py LAB_ACTIVATIONS.
Adding a method is one record here, one builder, one formula and one memory entry;
tests/engine/test_methods.py checks that every record has them (the record does not import
them: params.py and memory.py read the records, so the arrows run one way).

No torch and no Django: the web layer, the playgrounds and the engine all import this.
Validation that needs the base model or the datasets (workers/methods.py validate_run) is not here.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

MAX_STEPS = 2000
MAX_RANK = 256
MIN_TRAIN_EXAMPLES = 16
MAX_TRAIN_EXAMPLES = 100_000  # the public bound; a task's own size is the real one

# The linear layers a user may adapt, by the names the API uses, with the regular expression
# that finds them inside a BERT layer (workers/base_model.py module_regex); simulations.params
# Dims.target_shapes gives their shapes by the same names.
TARGET_MODULES = {
    "query": r"attention\.self\.query",
    "key": r"attention\.self\.key",
    "value": r"attention\.self\.value",
    "attention_output": r"attention\.output\.dense",
    # Anchored after "layer.N." by module_regex, so "output.dense" is the FFN one, not attention's.
    "ffn": r"intermediate\.dense|output\.dense",
}
# IA3 scales the FFN where Liu et al. 2022 put its l_ff: on the FFN's inner activation, the input
# of its second matrix (output.dense, the FFN's own under module_regex's anchor), not on the input
# of its first. peft's default for BERT (target_modules key, value, output.dense, each name matched
# as a suffix) also finds attention.output.dense and scales its input: d more numbers a layer.
IA3_MODULES = {**TARGET_MODULES, "ffn": r"output\.dense"}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int", "float" or "targets"
    default: Any  # None: optional, left out of the run's params unless given
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    help: str = ""

    def describe(self) -> dict:
        out = {"name": self.name, "type": self.kind, "default": self.default, "help": self.help}
        if self.kind == "targets":
            out["choices"] = list(TARGET_MODULES)
        else:
            out["minimum"], out["maximum"] = self.minimum, self.maximum
            out["exclusive_minimum"] = self.exclusive_minimum
        return out


# How a run's trained part is saved (workers/artifacts.py): by peft's save_pretrained (peft loads
# it onto the base), by transformers' save_pretrained (the whole model), or by the lab itself
# (the trained tensors, put back into the method's structure rebuilt on the base).
SavedBy = Literal["peft", "transformers", "lab"]


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    summary: str  # one line: what the method is
    trains: str  # what requires grad
    params: tuple[Param, ...]
    saved_by: SavedBy
    # The engine merges its trained update into the base weights after training and measures the
    # merged model (workers/measure.py inference_metrics). IA3's scales could be folded too
    # (simulations/family.py PROPERTIES says so); the lab does not merge them.
    mergeable: bool
    # Its model sees each token independently of the row it sits in, so the engine packs its
    # training batches (workers/packing.py); prompt and prefix tuning add positions of their own.
    packable: bool
    # Its runs join a pack: several runs (anyone's) trained in one fused step over one frozen base
    # (workers/runpack.py), each with its own trained tensors, optimizer, data and random numbers.
    # `pack_note` says why it does or does not (shown on the training page).
    joins_pack: bool
    pack_note: str
    colour: str  # the hex colour the run pages draw the method in
    param_names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "param_names", tuple(p.name for p in self.params))

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "summary": self.summary,
            "trains": self.trains,
            "colour": self.colour,
            "saved_by": self.saved_by,
            "mergeable": self.mergeable,
            "packable": self.packable,
            "joins_pack": self.joins_pack,
            "pack_note": self.pack_note,
            "params": [p.describe() for p in self.params],
        }


def lr(default: float) -> Param:
    """The learning rate: same bounds for every method, a default that suits each. Full
    fine-tuning's, LoRA's and the adapter's come from a sweep on the race's task (bench/race_levers.py,
    docs/measurements.md "Race levers"): the fastest to 80 % validation accuracy of those that stayed
    there; three times higher, LoRA's collapsed to one class. The rate falls linearly over the run
    (workers/training.make_schedule)."""
    return Param(
        "lr",
        "float",
        default,
        0.0,
        1.0,
        exclusive_minimum=True,
        help="learning rate of AdamW at the first step; it falls linearly to 1/steps of it at the last",
    )


BATCH_SIZE = Param("batch_size", "int", 16, 1, 256, help="examples per step")
EVAL_EVERY = Param(
    "eval_every", "int", 25, 0, MAX_STEPS, help="evaluate on the validation split every N steps (0: only at the end)"
)
RANK = Param("rank", "int", 8, 1, MAX_RANK, help="rank r of B·A; never above the smaller side of an adapted matrix")
ALPHA = Param(
    "alpha", "float", 16.0, 0.0, 1024.0, exclusive_minimum=True, help="LoRA scale: the update is (alpha/r)·B·A"
)
DROPOUT = Param("dropout", "float", 0.0, 0.0, 0.9, help="dropout on the LoRA input")
TARGETS = Param(
    "target_modules", "targets", ["query", "value"], help="which linear layers of every transformer layer are adapted"
)
IA3_TARGETS = Param(
    "target_modules",
    "targets",
    ["key", "value", "ffn"],
    help="where every transformer layer gets learned scales: the outputs of the named attention "
    "projections; ffn: the FFN's inner activation",
)
BOTTLENECK = Param("bottleneck", "int", 32, 1, MAX_RANK, help="adapter bottleneck width m; never above the hidden size")
VIRTUAL_TOKENS = Param("virtual_tokens", "int", 20, 1, 128, help="number of trained virtual tokens")
TRAIN_EXAMPLES = Param(
    "train_examples",
    "int",
    None,
    MIN_TRAIN_EXAMPLES,
    MAX_TRAIN_EXAMPLES,
    help="train on a seeded, class-balanced subset of this many training examples (default: the whole training split)",
)
COMMON = (BATCH_SIZE, EVAL_EVERY, TRAIN_EXAMPLES)


def _lora_params(default_lr: float) -> tuple[Param, ...]:
    return (RANK, ALPHA, DROPOUT, TARGETS, lr(default_lr), *COMMON)


# In the order the API, the training page and a classroom's default list them.
METHODS = {
    m.name: m
    for m in (
        Method(
            "full",
            "Full fine-tuning",
            "Every weight of the model trains.",
            "every weight of the encoder, and the classifier head",
            (lr(1.5e-4), *COMMON),
            saved_by="transformers",
            mergeable=False,
            packable=True,
            joins_pack=False,
            pack_note=("It trains the base weights themselves: there is no frozen base for runs to share."),
            colour="#4a5160",
        ),
        Method(
            "lora",
            "LoRA",
            "A low-rank update B·A beside each frozen weight; B starts at zero.",
            "B·A on the target modules, and the classifier head",
            _lora_params(6e-3),
            saved_by="peft",
            mergeable=True,
            packable=True,
            joins_pack=True,
            pack_note=(
                "Its update B·A sits beside frozen weights and acts on each token alone: the frozen "
                "layers run once for every run's tokens, and each run adds its own B·A to its own "
                "tokens."
            ),
            colour="#e07b2a",
        ),
        Method(
            "dora",
            "DoRA",
            "LoRA on the direction of each weight, plus a trained magnitude per column.",
            "B·A and the magnitudes on the target modules, and the head",
            _lora_params(2e-3),
            saved_by="peft",
            mergeable=True,
            packable=True,
            joins_pack=False,
            pack_note=(
                "Not yet: its magnitudes divide by the column norms of each run's own W + B·A, a per-"
                "run weight at every step; it could join with per-run norms, which the lab does not "
                "compute."
            ),
            colour="#b3261e",
        ),
        Method(
            "adapter",
            "Bottleneck adapter",
            "A small down/up projection after attention and after "
            "the FFN of every layer (Houlsby); the up-projection starts at zero.",
            "two adapters per layer, and the head",
            (BOTTLENECK, lr(5e-3), *COMMON),
            saved_by="lab",
            mergeable=False,
            packable=True,
            joins_pack=False,
            pack_note=(
                "Not yet: its bottleneck modules act on each token alone and could join as LoRA does;"
                " the lab's pack adds only LoRA's updates so far."
            ),
            colour="#3a5bd9",
        ),
        Method(
            "prompt",
            "Prompt tuning",
            "Trained virtual token embeddings in front of the input.",
            "the soft prompt vectors, and the head",
            (VIRTUAL_TOKENS, lr(3e-2), *COMMON),
            saved_by="peft",
            mergeable=False,
            packable=False,
            joins_pack=False,
            pack_note=(
                "Its virtual tokens lengthen every sequence: a run's rows differ from the others' at "
                "every layer, and the pack shares none of its attention."
            ),
            colour="#9333ea",
        ),
        Method(
            "prefix",
            "Prefix tuning",
            "Trained key/value prefixes in every attention layer.",
            "the key/value prefixes, and the head",
            (VIRTUAL_TOKENS, lr(1e-2), *COMMON),
            saved_by="lab",
            mergeable=False,
            packable=False,
            joins_pack=False,
            pack_note=(
                "Its prefixes change every layer's attention for its own sequences only; the pack "
                "does not route attention per run beyond the mask."
            ),
            colour="#16a34a",
        ),
        Method(
            "ia3",
            "IA3",
            "Learned scales on the keys, values and FFN activations.",
            "the scaling vectors, and the head",
            (IA3_TARGETS, lr(1e-2), *COMMON),
            saved_by="peft",
            mergeable=False,
            packable=True,
            joins_pack=False,
            pack_note=(
                "Not yet: its scaling vectors act on each token alone and could join as LoRA does; "
                "the lab's pack adds only LoRA's updates so far."
            ),
            colour="#0891b2",
        ),
        Method(
            "bitfit",
            "BitFit",
            "Only the bias terms of the encoder train.",
            "every bias, and the head",
            (lr(5e-3), *COMMON),
            saved_by="lab",
            mergeable=False,
            packable=True,
            joins_pack=False,
            pack_note=(
                "It trains the base's own bias terms, which a shared base cannot hold for several "
                "runs at once (per-run bias offsets could join; not built)."
            ),
            colour="#c9a000",
        ),
        Method(
            "qlora",
            "QLoRA",
            "LoRA on a base quantised to 4-bit NF4 with double quantisation.",
            "B·A on the target modules, and the head; the base is stored in 4 bits",
            _lora_params(2e-3),
            saved_by="peft",
            mergeable=True,
            packable=True,
            joins_pack=False,
            pack_note=(
                "Its frozen weights are stored in 4-bit NF4 and dequantized layer by layer; the "
                "pack's shared base is one bf16/fp32 copy, so a QLoRA run would no longer train on "
                "4-bit weights."
            ),
            colour="#7c2d12",
        ),
    )
}


def names_where(**flags) -> frozenset[str]:
    """The names of the methods whose record has these values, e.g. names_where(packable=True)."""
    return frozenset(m.name for m in METHODS.values() if all(getattr(m, k) == v for k, v in flags.items()))
