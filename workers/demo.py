"""A few demo sentences per task that every finished run predicts, stored in its metrics.

The merge-and-swap page (P13) shows what each trained adapter says about these sentences, and
that merging B·A into W leaves the answer unchanged, without loading torch in the web process.
The sentences are written for this purpose and appear in neither split of the shipped tasks.
torch is imported inside the functions: the web layer may read DEMO_SENTENCES.
"""

from workers import datasets
from workers.constants import MAX_TOKENS

# (text, the label a person would give it), per built-in task.
DEMO_SENTENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "sentiment": (
        ("I expected to hate it, yet the ending won me over.", "positive"),
        ("Not a single scene made me laugh.", "negative"),
        ("The room was spotless and the staff could not have been kinder.", "positive"),
        ("Lovely cover, shame about everything inside it.", "negative"),
        ("For the price, the battery life is not bad at all.", "positive"),
        ("I wanted to like this café, but my coffee came cold twice.", "negative"),
    ),
    "topic": (
        ("Rovers striker scores twice as the league leaders stay unbeaten", "sports"),
        ("Astronomers detect water vapour above a distant rocky planet", "science"),
        ("Retail chain cuts its profit forecast as shoppers tighten budgets", "business"),
        ("New phone chip promises a full day of battery with the screen on", "technology"),
        ("Marathon organisers add a second start wave after record entries", "sports"),
        ("Central bank holds interest rates steady for a third month", "business"),
    ),
}
# A task without its own sentences (an uploaded one) shows its first validation examples.
FALLBACK_COUNT = 6


def sentences(task_name: str) -> list[tuple[str, str]]:
    """(text, expected label) pairs for the task."""
    if task_name in DEMO_SENTENCES:
        return list(DEMO_SENTENCES[task_name])
    task = datasets.load_task(task_name)
    return [(e.text, task.labels[e.label]) for e in task.val[:FALLBACK_COUNT]]


def logits(model, task_name: str, device):
    """The model's logits on the task's demo sentences, in eval mode, as a CPU float tensor."""
    import torch

    from workers import classifier

    texts = [text for text, _ in sentences(task_name)]
    encoded = classifier.load_base().tokenizer(
        texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
    )
    model.eval()
    with torch.no_grad():
        out = model(input_ids=encoded["input_ids"].to(device), attention_mask=encoded["attention_mask"].to(device))
    return out.logits.float().cpu()


def record(task_name: str, unmerged, merged=None) -> dict:
    """What a run stores: the sentences, label probabilities before and (for a mergeable method)
    after merging, and the largest |logit difference| between the two on these sentences."""
    import torch

    pairs = sentences(task_name)
    out = {
        "texts": [t for t, _ in pairs],
        "expected": [label for _, label in pairs],
        "labels": list(datasets.load_task(task_name).labels),
        "probs": torch.softmax(unmerged, dim=-1).tolist(),
        "probs_merged": None,
        "max_abs_logit_diff": None,
    }
    if merged is not None:
        out["probs_merged"] = torch.softmax(merged, dim=-1).tolist()
        out["max_abs_logit_diff"] = (unmerged - merged).abs().max().item()
    return out
