"""JSON endpoints of chapter 6, serving many tasks: P13 merge-and-swap and P20
freeze-attach-merge. Each answers everything its page needs in one response."""

from ninja import Router

from peftlab.api.errors import Error, checked_query
from peftlab.classroom import access
from peftlab.errors import Invalid
from peftlab.runs.models import Run
from simulations import lora, serving
from simulations.adapter_block import bert_total
from workers import base_model, datasets

router = Router(tags=["playgrounds"])

RUNS_LIMIT_MAX = 200
# A run whose metrics hold these was a mergeable method that saved its adapter, measured the
# merge and predicted the demo sentences (workers/measure.py inference_metrics).
MERGE_KEYS = ("merge_max_abs_diff", "latency_merged_ms", "adapter_bytes")


def _run_json(run: Run, dims, labels: dict[str, int], base_bytes: int) -> dict:
    m, p = run.metrics, run.params
    num_labels = labels.get(run.task, len(m["demo"]["labels"]))
    return {
        "id": run.pk,
        "method": run.method,
        "task": run.task,
        "steps": run.steps,
        "seed": run.seed,
        "rank": p.get("rank"),
        "alpha": p.get("alpha"),
        "targets": p.get("target_modules", []),
        "device": run.device,
        "val_accuracy": m.get("val_accuracy"),
        "adapter_bytes": m["adapter_bytes"],
        "adapter_share_of_base": m["adapter_bytes"] / base_bytes,
        "adapter_tensor_bytes_formula": serving.lab_adapter_bytes(dims, p["rank"], p["target_modules"], num_labels),
        "full_bytes_formula": serving.lab_full_bytes(dims, num_labels),
        "latency_batch": m.get("latency_batch"),
        "latency_ms": m["latency_ms"],
        "latency_merged_ms": m["latency_merged_ms"],
        "merge_max_abs_diff": m["merge_max_abs_diff"],
        "demo": m["demo"],
        "merge_exact": m["demo"]["max_abs_logit_diff"] < serving.ROUNDING_TOLERANCE,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


@router.get(
    "/merge-and-swap", response={200: dict, 400: Error}, summary="P13: the lab's trained adapters, merged and swapped"
)
def merge_and_swap(request, limit: int = checked_query(50, minimum=1, maximum=RUNS_LIMIT_MAX)):
    """The newest `limit` succeeded runs of a mergeable method with saved adapters, each with its
    size on disk, measured latency unmerged and merged, the largest logit change the merge made,
    and its predictions on the demo sentences; the base model's size; the storage of N tasks for
    several models and ranks; an illustration by formula for when no run exists yet."""
    if not 1 <= limit <= RUNS_LIMIT_MAX:
        raise Invalid(f"limit must be between 1 and {RUNS_LIMIT_MAX} (got {limit})")
    dims = base_model.dimensions()
    tasks = {t["name"]: len(t["labels"]) for t in datasets.list_tasks()}
    merged = access.visible_runs(request).filter(status=Run.SUCCEEDED, metrics__has_key=MERGE_KEYS[0])
    runs = [
        r
        for r in merged.filter(metrics__has_key="demo")[:limit]
        if all(r.metrics.get(k) is not None for k in MERGE_KEYS)
    ]
    weights = base_model.model_path() / "model.safetensors"
    base_bytes = weights.stat().st_size
    return {
        "runs": [_run_json(r, dims, tasks, base_bytes) for r in runs],
        "runs_without_demo": merged.exclude(metrics__has_key="demo").count(),
        "base": {"name": base_model.NAME, "params": bert_total(dims), "file_bytes": base_bytes, "file": weights.name},
        "illustration": serving.illustration(dims, tasks),
        "storage": serving.storage_story(serving.storage_models(base_model.memory_model())),
        "storage_ranks": list(serving.STORAGE_RANKS),
        "storage_targets": list(serving.STORAGE_TARGETS),
        "tasks_max": serving.TASKS_MAX,
        "storage_default": serving.STORAGE_DEFAULT,
        "start_run": {"method": "lora", "task": next(iter(tasks), "sentiment")},
        "reported": list(serving.REPORTED),
        "notes": serving.source_notes(),
    }


@router.get("/freeze-attach-merge", response={200: dict}, summary="P20: one frozen matrix, a LoRA side-car, the merge")
def freeze_attach_merge(request):
    """For every hidden size d and rank r on the sliders: d² against 2·d·r, the share, bytes;
    GPT-3's whole-model reduction by rank; the reported figures of the LoRA paper walk-through."""
    return {
        "table": serving.freeze_attach_table(),
        "defaults": serving.FREEZE_DEFAULT,
        "lab_hidden": base_model.dimensions().hidden,
        "gpt3": {
            "name": lora.GPT3_175B.label,
            "layers": lora.GPT3_175B.layers,
            "total": serving.GPT3_NOMINAL,
            "rows": serving.gpt3_reduction(),
        },
        "reported": list(serving.REPORTED),
    }
