"""What would make the four-method race show learning: the classifier's head and the learning rate,
measured in steps rather than guessed.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/race_levers.py [--steps 60] [--methods full,adapter,lora,prompt]

Each configuration trains for real through the engine's own loop (workers/training.py), on the race's
task and batch size, evaluating on the whole validation split every EVAL_EVERY steps. Three heads:

- "cls": today's. BertForSequenceClassification reads the [CLS] token's state through the pretrained
  pooler (a dense layer and tanh), which is frozen for every method but full fine-tuning;
- "cls+pooler": the same, with the pooler trained by every method;
- "mean": the mean of the token states over the real tokens (the attention mask), as
  all-MiniLM-L6-v2 was trained to give a sentence's meaning, straight into the head.

It reports, per method, head and learning rate: the first evaluated step at which validation accuracy
reaches 80 %, the accuracy at the race's 30 steps and at the last step, and how far the smoothed
training loss fell by step 30 (the mean of steps 1-5 minus the mean of steps 26-30). Steps, not
seconds: what a lever buys per step does not depend on how busy the machine is. The table goes to
docs/measurements.md ("Race levers").
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench.report import cpu_name, write_section  # noqa: E402
from workers import classifier, measure, packing, training  # noqa: E402
from workers.methods import METHODS, validate_run  # noqa: E402

MEASUREMENTS = Path(__file__).resolve().parent.parent / "docs" / "measurements.md"
HEADING = "## Race levers: the head and the learning rate"
TASK = "sentiment"
BATCH = 16
EVAL_EVERY = 5
RACE_STEPS = 30
HEADS = ("cls", "cls+pooler", "mean")
# The method's default learning rate, and the multiples of it tried.
LR_FACTORS = (1, 3, 10)


class MeanPool(nn.Module):
    """In the place of BertModel's pooler: the mean of the token states over the real tokens. The
    attention mask reaches it through a pre-hook on the encoder (`watch_mask`)."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        mask = self.mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def encoder_of(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if type(m).__name__ == "BertModel")


def with_head(head: str):
    """classifier.build_model, with the head `head` put in after the method is applied."""
    build = classifier.build_model

    def build_model(spec, num_labels, device):
        model = build(spec, num_labels, device)
        bert = encoder_of(model)
        if head == "cls+pooler":
            bert.pooler.requires_grad_(True)
        elif head == "mean":
            pool = MeanPool()
            bert.pooler = pool

            def watch_mask(module, args, kwargs):
                pool.mask = kwargs.get("attention_mask")

            bert.register_forward_pre_hook(watch_mask, with_kwargs=True)
        return model

    return build_model


def run(method: str, head: str, lr: float, steps: int) -> dict:
    spec = validate_run(method, TASK, steps, 0, {"lr": lr, "batch_size": BATCH, "eval_every": EVAL_EVERY})
    points, evals = [], []

    def report(new_points, new_evals):
        points.extend(new_points)
        evals.extend(new_evals)
        return True

    original = classifier.build_model
    classifier.build_model = with_head(head)
    try:
        training.train(spec, report, save_dir=None, device=torch.device("cpu"))
    finally:
        classifier.build_model = original
    losses = [p.loss for p in sorted(points, key=lambda p: p.step)]
    reached = next((e.step for e in evals if e.val_accuracy >= 0.8), None)
    at = {e.step: e.val_accuracy for e in evals}
    window = min(RACE_STEPS, len(losses))
    return {
        "steps_to_80": reached,
        "acc_race": at.get(min(RACE_STEPS, steps)),
        "acc_last": evals[-1].val_accuracy,
        "loss_drop_race": sum(losses[:5]) / 5 - sum(losses[window - 5 : window]) / 5,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--methods", default="full,adapter,lora,prompt")
    parser.add_argument("--heads", default=",".join(HEADS))
    parser.add_argument("--write", action="store_true", help="write the table into docs/measurements.md")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    # Padded batches for every method: packing changes no step's result (tests/engine/test_packing.py),
    # and the mean head reads the padded batch's attention mask.
    packing.PACKABLE = frozenset()
    measure.inference_metrics = lambda *a, **k: {}  # latency and merging: not what this measures
    rows = []
    for method in args.methods.split(","):
        base_lr = METHODS[method].param("lr").default
        for head in args.heads.split(","):
            for factor in LR_FACTORS:
                lr = base_lr * factor
                got = run(method, head, lr, args.steps)
                rows.append((method, head, lr, got))
                print(method, head, f"{lr:g}", got, flush=True)
    table = [
        f"| method | head | lr | steps to 80 % | val. acc. at step 30 | at step {args.steps} | loss drop by step 30 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for method, head, lr, got in rows:
        reached = got["steps_to_80"] if got["steps_to_80"] is not None else f"> {args.steps}"
        table.append(
            f"| {method} | {head} | {lr:g} | {reached} | {got['acc_race']:.1%} | {got['acc_last']:.1%} | "
            f"{got['loss_drop_race']:+.3f} |"
        )
    text = (
        f"`bench/race_levers.py --steps {args.steps}`: task {TASK}, batch {BATCH}, seed 0, validation every "
        f"{EVAL_EVERY} steps on the whole split, padded batches, fp32 or the machine's autocast as the engine "
        f"chooses; CPU {cpu_name()}. Heads as the script's docstring says; learning rates are the method's "
        f"default times {', '.join(map(str, LR_FACTORS))}.\n\n" + "\n".join(table)
    )
    print(text)
    if args.write:
        write_section(text, HEADING, MEASUREMENTS)


if __name__ == "__main__":
    main()
