"""P18 Decision tree: which fine-tuning method fits a situation.

The tree is plain data: questions (yes/no), the edge each answer follows, and leaves that name a
method and the reason. `recommend(answers)` walks it. The logic follows the two selection guides in
the sources: the prompting-and-LoRA lecture (the "decision framework" scenario table: no data -> prompting, API only ->
prompt tuning, weight access -> LoRA, 100K+ examples and a cluster -> full fine-tuning, model too
large for the GPU -> QLoRA, many tasks / latency-critical -> LoRA) and the PEFT derivations post (the "Method Selection
Guide": very large base and many tasks -> prompt tuning, BERT-style classification with many tasks
-> adapters, zero inference overhead -> LoRA merged, few thousand examples -> prefix tuning or
BitFit, single 24-48 GB GPU with a 30B+ model -> QLoRA).

No Django imports: the API module serialises what this returns.
"""

from __future__ import annotations

from simulations import sources
from simulations.methods import METHODS

ANSWERS = ("yes", "no")

# Methods the lab can train (the registry, simulations/methods.py); a leaf for any other method
# gets no Train link.
TRAINABLE = tuple(METHODS)

QUESTIONS = {
    "q1": {
        "short": "≥100 labeled examples?",
        "text": "Do you have at least ~100 labeled examples?",
        "help": "Gradient methods need data; with a handful of examples, show them in the prompt instead.",
        "yes": "q2",
        "no": "prompting",
    },
    "q2": {
        "short": "Can change weights?",
        "text": "Can you change the model's weights (not only call an API)?",
        "help": "With API access only, adaptation has to live in the input.",
        "yes": "q3",
        "no": "prompt_api",
    },
    "q3": {
        "short": "GPU memory tight?",
        "text": "Is GPU memory tight: does the 16-bit model, plus training state, not fit?",
        "help": "For example a 30B+ model on one 24-48 GB GPU.",
        "yes": "qlora",
        "no": "q4",
    },
    "q4": {
        "short": "100K+ examples + cluster?",
        "text": "Do you have 100K+ examples and a full GPU cluster?",
        "help": "Enough data and compute that the cost of updating every weight pays off.",
        "yes": "full",
        "no": "q5",
    },
    "q5": {
        "short": "Huge base, many tasks?",
        "text": "Is the base very large (>10B parameters) and shared by many tasks?",
        "help": "Each task then needs only a few thousand numbers of storage.",
        "yes": "prompt_large",
        "no": "q6",
    },
    "q6": {
        "short": "≤ few thousand examples?",
        "text": "Only a few thousand labeled examples, or fewer?",
        "help": "Small data rewards methods with a strong bias and few parameters.",
        "yes": "bitfit",
        "no": "q7",
    },
    "q7": {
        "short": "Zero added latency?",
        "text": "Must inference add zero latency?",
        "help": "A real-time or latency-critical service.",
        "yes": "lora_merged",
        "no": "q8",
    },
    "q8": {
        "short": "Many tasks, BERT-style?",
        "text": "Many classification tasks on a BERT-style encoder?",
        "help": "Per-task modules on one frozen encoder, with established tooling.",
        "yes": "adapter",
        "no": "lora",
    },
}

LEAVES = {
    "prompting": {
        "method": "prompting",
        "label": "Zero/few-shot prompting",
        "reason": "Too little data to train anything: put instructions and a few examples "
        "in the context and rely on what the model already knows.",
    },
    "prompt_api": {
        "method": "prompt",
        "label": "Prompt tuning",
        "reason": "Without the weights, train only soft prompt vectors in front of the input, "
        "which some API providers support.",
    },
    "qlora": {
        "method": "qlora",
        "label": "QLoRA",
        "reason": "Quantise the frozen base to 4-bit NF4 and train 16-bit LoRA factors on top: "
        "a 65B model fine-tunes on one 48 GB GPU.",
    },
    "full": {
        "method": "full",
        "label": "Full fine-tuning",
        "reason": "Maximum accuracy; with this much data and compute, the cost of training "
        "and storing every weight is justified.",
    },
    "prompt_large": {
        "method": "prompt",
        "label": "Prompt tuning",
        "reason": "On very large bases prompt tuning closes the gap to full fine-tuning, "
        "and each task stores only its soft prompt.",
    },
    "bitfit": {
        "method": "bitfit",
        "label": "BitFit (or prefix tuning)",
        "reason": "Few trainable parameters and a strong bias overfit less on small data; "
        "prefix tuning is the other first choice here.",
    },
    "lora_merged": {
        "method": "lora",
        "label": "LoRA, merged",
        "reason": "After training, B·A is added into W: the served model is one matrix per "
        "layer, as fast as the original.",
    },
    "adapter": {
        "method": "adapter",
        "label": "Bottleneck adapter",
        "reason": "Tiny per-task modules on one frozen encoder; they add a small serial "
        "sub-layer (about 1-3% latency per block).",
    },
    "lora": {
        "method": "lora",
        "label": "LoRA (r = 8 to start)",
        "reason": "The best accuracy per trained parameter; one frozen base with small swappable "
        "LoRA checkpoints per task, and no latency once merged.",
    },
}

ROOT = "q1"


def _children(node: str) -> list[str]:
    q = QUESTIONS.get(node)
    return [q["yes"], q["no"]] if q else []


def layout() -> dict[str, dict]:
    """Node positions for drawing: leaves spaced evenly left to right in depth-first order (the
    'yes' branch first), each question centred over its two children; y is the depth."""
    pos: dict[str, dict] = {}
    counter = [0]

    def place(node: str, depth: int) -> float:
        kids = _children(node)
        if not kids:
            x = float(counter[0])
            counter[0] += 1
        else:
            x = sum(place(k, depth + 1) for k in kids) / len(kids)
        pos[node] = {"x": x, "y": depth}
        return x

    place(ROOT, 0)
    return pos


def validate(answers: dict) -> dict[str, str]:
    """Keep only question ids with a yes/no answer; anything else is a ValueError a person can act on."""
    clean = {}
    for key, value in answers.items():
        if key not in QUESTIONS:
            raise ValueError(f"Unknown question {key!r}; the questions are {', '.join(QUESTIONS)}.")
        if value not in ANSWERS:
            raise ValueError(f"Answer to {key} must be 'yes' or 'no', not {value!r}.")
        clean[key] = value
    return clean


def recommend(answers: dict) -> dict:
    """Walk the tree from the root following the answers.

    Returns the nodes on the path, the edges taken (from, to, answer), the next unanswered question
    (None once a leaf is reached), the leaf and its method (None until reached), and which of the
    given answers lie on the path (answers to questions off the path are ignored)."""
    answers = validate(answers)
    node, path, edges, used = ROOT, [ROOT], [], {}
    while node in QUESTIONS and node in answers:
        ans = answers[node]
        used[node] = ans
        nxt = QUESTIONS[node][ans]
        edges.append({"source": node, "target": nxt, "answer": ans})
        path.append(nxt)
        node = nxt
    leaf = node if node in LEAVES else None
    method = LEAVES[leaf]["method"] if leaf else None
    return {
        "path": path,
        "edges": edges,
        "used": used,
        "next": None if leaf else node,
        "leaf": leaf,
        "method": method,
        "trainable": method in TRAINABLE if method else False,
    }


# The sources' scenarios, each as the answers it implies; `guide_choice` is what the source recommends,
# `accepts` the lab method names that count as agreeing with it. The method shown on the page comes
# from recommend(), never from this table.
SCENARIOS = [
    {
        "source": sources.LECTURE,
        "scenario": "No labeled data at all",
        "guide_choice": "Zero/few-shot prompting",
        "accepts": ["prompting"],
        "answers": {"q1": "no"},
    },
    {
        "source": sources.LECTURE,
        "scenario": "10-100 labeled examples",
        "guide_choice": "Few-shot + CoT prompting",
        "accepts": ["prompting"],
        "answers": {"q1": "no"},
    },
    {
        "source": sources.LECTURE,
        "scenario": "100-10K examples, API access only",
        "guide_choice": "Prompt tuning",
        "accepts": ["prompt"],
        "answers": {"q1": "yes", "q2": "no"},
    },
    {
        "source": sources.LECTURE,
        "scenario": "1K-100K examples, weight access",
        "guide_choice": "LoRA (r=4-16)",
        "accepts": ["lora"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "no", "q5": "no", "q6": "no", "q7": "no", "q8": "no"},
    },
    {
        "source": sources.LECTURE,
        "scenario": "10+ tasks on the same base model",
        "guide_choice": "LoRA with adapter swapping",
        "accepts": ["lora"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "no", "q5": "no", "q6": "no", "q7": "no", "q8": "no"},
    },
    {
        "source": sources.LECTURE,
        "scenario": "100K+ examples, full GPU cluster",
        "guide_choice": "Full fine-tuning",
        "accepts": ["full"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "yes"},
    },
    {
        "source": sources.LECTURE,
        "scenario": "Real-time serving, latency-critical",
        "guide_choice": "LoRA (merged) or full FT",
        "accepts": ["lora", "full"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "no", "q5": "no", "q6": "no", "q7": "yes"},
    },
    {
        "source": sources.LECTURE,
        "scenario": "Model too large for GPU memory",
        "guide_choice": "QLoRA",
        "accepts": ["qlora"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "yes"},
    },
    {
        "source": sources.DERIVATIONS,
        "scenario": "GPT-style decoder fine-tuning",
        "guide_choice": "LoRA (q, v)",
        "accepts": ["lora"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "no", "q5": "no", "q6": "no", "q7": "no", "q8": "no"},
    },
    {
        "source": sources.DERIVATIONS,
        "scenario": "BERT-style classification, many tasks",
        "guide_choice": "Adapter (Pfeiffer)",
        "accepts": ["adapter"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "no", "q5": "no", "q6": "no", "q7": "no", "q8": "yes"},
    },
    {
        "source": sources.DERIVATIONS,
        "scenario": "Very large base (>10B), many tasks",
        "guide_choice": "Prompt tuning",
        "accepts": ["prompt"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "no", "q5": "yes"},
    },
    {
        "source": sources.DERIVATIONS,
        "scenario": "Need zero inference overhead",
        "guide_choice": "LoRA + merge",
        "accepts": ["lora"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "no", "q5": "no", "q6": "no", "q7": "yes"},
    },
    {
        "source": sources.DERIVATIONS,
        "scenario": "Few-shot / few-thousand examples",
        "guide_choice": "Prefix tuning or BitFit",
        "accepts": ["prefix", "bitfit"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "no", "q4": "no", "q5": "no", "q6": "yes"},
    },
    {
        "source": sources.DERIVATIONS,
        "scenario": "Single 24-48 GB GPU, 30B+ model",
        "guide_choice": "QLoRA",
        "accepts": ["qlora"],
        "answers": {"q1": "yes", "q2": "yes", "q3": "yes"},
    },
]


# What a scenario row names its guide by, on a phone-wide table; the page says which is which.
SHORT_SOURCE = {sources.LECTURE: "lecture", sources.DERIVATIONS: "blog post"}


def scenario_table() -> list[dict]:
    """Every source scenario with the tree's own recommendation for its answers."""
    rows = []
    for s in SCENARIOS:
        r = recommend(s["answers"])
        rows.append(
            {
                "source": s["source"],
                "source_short": SHORT_SOURCE[s["source"]],
                "scenario": s["scenario"],
                "guide_choice": s["guide_choice"],
                "answers": s["answers"],
                "leaf": r["leaf"],
                "method": r["method"],
                "label": LEAVES[r["leaf"]]["label"],
                "trainable": r["trainable"],
                "agrees": r["method"] in s["accepts"],
            }
        )
    return rows


def tree() -> dict:
    """The whole tree for drawing: nodes with positions, edges with their answer labels."""
    pos = layout()
    nodes = []
    for nid, q in QUESTIONS.items():
        nodes.append(
            {"id": nid, "kind": "question", "short": q["short"], "text": q["text"], "help": q["help"], **pos[nid]}
        )
    for nid, leaf in LEAVES.items():
        nodes.append(
            {
                "id": nid,
                "kind": "leaf",
                "text": leaf["label"],
                "method": leaf["method"],
                "reason": leaf["reason"],
                "trainable": leaf["method"] in TRAINABLE,
                **pos[nid],
            }
        )
    edges = [{"source": nid, "target": q[a], "answer": a} for nid, q in QUESTIONS.items() for a in ANSWERS]
    depth = max(p["y"] for p in pos.values())
    width = max(p["x"] for p in pos.values())
    return {"root": ROOT, "nodes": nodes, "edges": edges, "depth": depth, "width": width}
