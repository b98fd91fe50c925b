"""P21: a quiz per chapter. Every choice says why it is right or wrong; a question may name the
misconception it targets. Numbers inside questions are computed here from simulations.params and
simulations.lowrank's formulas, never typed, so a quiz and the playgrounds cannot disagree.

Pure Python; the page embeds QUIZZES as JSON and checks answers in the browser (by index).
"""

import hashlib
from dataclasses import asdict, dataclass

from simulations import params, prompting


@dataclass(frozen=True)
class Choice:
    text: str
    correct: bool
    why: str


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    choices: tuple[Choice, ...]
    misconception: str = ""


def _n(x: float) -> str:
    return f"{x:,.0f}"


# Figures the questions use, from the formulas (the LoRA course, chapter 3: r = 8 on a 4096×4096 matrix).
_D, _R = 4096, 8
_LORA_4096 = params.lora_matrix_params(_D, _D, _R)
_ADAPTER_1024 = params.adapter_weight_params(1024, 64)  # the prompting-and-LoRA lecture: d = 1024, m = 64
_FP32, _FP16 = 4, 2  # bytes per number
_COPY_GB = 7e9 * _FP16 / 1e9  # the LoRA course, chapter 0: a 7B model in 16-bit weights
_PREFIX = params.prefix_params(20, 4096, 32)  # the prompting-and-LoRA lecture: 20 tokens × 32 layers × 2 × 4096
_LAYERS_12 = 12  # BERT-base / RoBERTa-base depth
# P4's contextual calibration (Zhao et al. 2021, the prompting-and-LoRA lecture): a review at 0.6, "N/A" at 0.7.
_RAW, _BIAS = 0.6, 0.7
_CAL = prompting.calibrate(_RAW, _BIAS)
_RAW_BIAS_TEXT = (f"{_RAW:g}", f"{_BIAS:g}")
_PREFIX_RATIO = params.prefix_params(1, 1, _LAYERS_12) // params.prompt_params(1, 1)

QUIZZES: dict[int, tuple[Question, ...]] = {
    1: (
        Question(
            "cost-memory",
            "Full fine-tuning with Adam in fp32: roughly how many bytes does each weight "
            "need before counting activations?",
            (
                Choice(
                    f"{_FP32} bytes",
                    False,
                    "That is only the weight itself; training also keeps its gradient and Adam's two moments.",
                ),
                Choice(
                    f"{2 * _FP32} bytes", False, "Weight and gradient, but Adam's first and second moments are missing."
                ),
                Choice(f"{4 * _FP32} bytes", True, f"Weight, gradient, and Adam's m and v: 4 × {_FP32} bytes."),
                Choice(f"{_FP16} bytes", False, "That is an fp16 weight for inference, not training."),
            ),
            "Fine-tuning memory equals the model's size.",
        ),
        Question(
            "cost-storage",
            "Ten tasks fine-tuned fully from one 7B model in 16-bit weights store how much?",
            (
                Choice(
                    f"{_COPY_GB:.0f} GB: the copies share weights",
                    False,
                    "Each full fine-tune changes every weight, so each task keeps a complete copy.",
                ),
                Choice(
                    f"About {10 * _COPY_GB:.0f} GB",
                    True,
                    f"Ten complete {_COPY_GB:.0f} GB copies (7B × {_FP16} bytes each).",
                ),
                Choice(
                    f"About {_COPY_GB / 10:.1f} GB",
                    False,
                    "That would be a tenth of one model: far less than even one copy.",
                ),
            ),
        ),
    ),
    2: (
        Question(
            "icl-weights",
            "What does few-shot prompting change in the model?",
            (
                Choice(
                    "Nothing: the examples only live in the prompt",
                    True,
                    "In-context learning conditions the frozen model on examples; no weight moves.",
                ),
                Choice(
                    "The last layer's weights",
                    False,
                    "No gradient step is taken; the weights are the same before and after.",
                ),
                Choice("A small adapter", False, "Adapters are trained modules; prompting trains nothing."),
            ),
            "Few-shot prompting is a kind of training.",
        ),
        Question(
            "icl-limit",
            "Why can't few-shot prompting scale to thousands of examples?",
            (
                Choice(
                    "Every example costs context-window tokens on every call",
                    True,
                    "The prompt grows with each example, up to the context limit, and is paid for at each request.",
                ),
                Choice(
                    "The model forgets earlier tasks",
                    False,
                    "Nothing is stored between calls, so there is nothing to forget.",
                ),
                Choice("Examples must be in the training data", False, "The examples are new text in the prompt."),
            ),
        ),
        Question(
            "calibration",
            f'On the content-free input "N/A" a model gives Positive {_RAW_BIAS_TEXT[1]}. '
            f"On a review it gives Positive {_RAW_BIAS_TEXT[0]}. What does contextual calibration answer?",
            (
                Choice(
                    f"Negative: {_CAL.calibrated[0]:.2f} Positive against {_CAL.calibrated[1]:.2f} Negative",
                    True,
                    f"Divide by the content-free probabilities: {_RAW:g}/{_BIAS:g} = {_CAL.divided[0]:.3f} and "
                    f"{1 - _RAW:g}/{1 - _BIAS:g} = {_CAL.divided[1]:.3f}, then renormalise. Below the model's usual "
                    "leaning means below the middle.",
                ),
                Choice(
                    f"Positive, because {_RAW:g} is above 0.5",
                    False,
                    "That is the raw answer; calibration moves "
                    f"the threshold to the content-free probability, {_BIAS:g}.",
                ),
                Choice(
                    f"Positive {_RAW:g}, unchanged",
                    False,
                    "Calibration changes every answer unless the content-free probability is exactly one half.",
                ),
                Choice(
                    "It cannot say without retraining",
                    False,
                    "Calibration is arithmetic on two probabilities; nothing is trained.",
                ),
            ),
            "A prompt's raw probabilities are already calibrated.",
        ),
    ),
    3: (
        Question(
            "intrinsic",
            "What does a small intrinsic dimension of fine-tuning suggest?",
            (
                Choice(
                    "The task update can be found in a small subspace of weight space",
                    True,
                    "Training only a few hundred directions already reaches most of full fine-tuning's accuracy.",
                ),
                Choice(
                    "The model has few parameters",
                    False,
                    "It says nothing about the model's size, only about how many directions the update needs.",
                ),
                Choice(
                    "The pretrained weights are low-rank",
                    False,
                    "The weights are dense and full-rank; it is the change that is small.",
                ),
            ),
        ),
    ),
    4: (
        Question(
            "adapter-count",
            "An adapter with bottleneck m = 64 on hidden size d = 1024 has how many weights (without biases)?",
            (
                Choice(_n(_ADAPTER_1024), True, "A down projection d×m plus an up projection m×d: 2·d·m."),
                Choice(_n(1024 * 64), False, "That is only one of the two projections."),
                Choice(_n(1024 * 1024), False, "That is a full d×d matrix, what the bottleneck avoids."),
            ),
        ),
        Question(
            "adapter-latency",
            "Why do bottleneck adapters add inference latency while merged LoRA does not?",
            (
                Choice(
                    "They are extra layers in the forward path that cannot be folded into W",
                    True,
                    "A nonlinearity sits between the projections, so they stay separate layers at inference.",
                ),
                Choice(
                    "They have more parameters than the base model",
                    False,
                    "They have far fewer; the cost is the extra sequential layers, not their size.",
                ),
                Choice("They run on the CPU", False, "They run wherever the model runs."),
            ),
        ),
    ),
    5: (
        Question(
            "lora-count",
            f"LoRA with r = {_R} on one {_D}×{_D} matrix trains how many parameters?",
            (
                Choice(
                    _n(_LORA_4096),
                    True,
                    f"A is r×d and B is d×r: 2·d·r = {_n(_LORA_4096)}, {100 * _LORA_4096 / _D**2:.2f} % of the matrix.",
                ),
                Choice(_n(_D * _R), False, "That counts only A (or only B)."),
                Choice(_n(_D * _D), False, "That is the full matrix: what LoRA does not train."),
            ),
        ),
        Question(
            "lora-init",
            "Why is B initialised to zero and A at random?",
            (
                Choice(
                    "So that B·A = 0 and training starts exactly at the pretrained model, while A's gradient "
                    "through B can still grow",
                    True,
                    "With B = 0 the output is the base model's; B's gradient is non-zero because A is random.",
                ),
                Choice(
                    "Both could be zero just as well",
                    False,
                    "If both are zero, each one's gradient is "
                    "multiplied by the other and stays zero: nothing ever learns.",
                ),
                Choice("To make the update full-rank", False, "B·A has rank at most r whatever the initialisation."),
            ),
            "Both A and B start at zero.",
        ),
        Question(
            "lora-what-low-rank",
            "What is low-rank in LoRA?",
            (
                Choice("The update ΔW", True, "ΔW = B·A has rank at most r; W itself stays as it was."),
                Choice(
                    "The pretrained weight W",
                    False,
                    "W is dense and full-rank; approximating it would lose what pretraining learned.",
                ),
                Choice("The input x", False, "Inputs are whatever the data is; LoRA constrains only the update."),
            ),
            "The model's weights are low-rank.",
        ),
    ),
    6: (
        Question(
            "merge",
            "After merging, W' = W + (α/r)·B·A. What does inference cost?",
            (
                Choice("The same as the base model", True, "One matrix of the original shape: no extra layer."),
                Choice(
                    "The base plus the B·A path",
                    False,
                    "That is the unmerged case; merged, the paths collapse into W'.",
                ),
                Choice("Twice the base", False, "W' has exactly W's shape."),
            ),
            "LoRA is always slower at inference.",
        ),
        Question(
            "merged-shape",
            "After W' = W + (α/r)·B·A, how many weights does the merged d×d layer hold?",
            (
                Choice(
                    "d², exactly as many as W",
                    True,
                    "B·A is a d×d matrix added entry by entry: the shape, the "
                    "cost and the latency of the layer do not change.",
                ),
                Choice(
                    "d² + 2·d·r",
                    False,
                    "A and B exist only until they are folded into W'; serving the merged layer keeps neither.",
                ),
                Choice("2·d·r", False, "That is what trains; the merged layer still holds all of W."),
                Choice(
                    "d² + r²", False, "No r×r matrix appears anywhere in LoRA: the rank is the thin side of A and of B."
                ),
            ),
        ),
        Question(
            "swap-or-merge",
            "One base model serves many tasks, switching task per request. Why keep the adapters unmerged?",
            (
                Choice(
                    "Merging bakes one task into W'; unmerged adapters swap per request",
                    True,
                    "The price is the "
                    "small extra B·(A·x) on every request; merging is for serving one task at full speed.",
                ),
                Choice(
                    "Merged adapters give different answers",
                    False,
                    "Merging computes the same sum ahead of time: the outputs agree up to rounding.",
                ),
                Choice(
                    "Merge all the adapters into one W'",
                    False,
                    "The sum of several tasks' updates is none of those tasks.",
                ),
            ),
            "Merging an adapter changes what the model answers.",
        ),
    ),
    7: (
        Question(
            "qlora-what",
            "What does QLoRA keep in 4 bits?",
            (
                Choice(
                    "Only the frozen base weights",
                    True,
                    "The base is NF4; the LoRA matrices and the computation through them stay in 16 or 32 bits.",
                ),
                Choice(
                    "Everything, adapters included",
                    False,
                    "The trained adapters stay in higher precision; only the frozen base is quantised.",
                ),
                Choice(
                    "Only the activations",
                    False,
                    "Activations are computed in bf16/fp32; it is the stored base weights that are 4-bit.",
                ),
            ),
            "QLoRA quantises everything to 4 bits.",
        ),
    ),
    8: (
        Question(
            "prefix-count",
            "Prefix tuning with 20 virtual tokens on 32 layers of width 4096 trains how many numbers?",
            (
                Choice(_n(_PREFIX), True, "A key and a value vector per token per layer: 20·32·2·4096."),
                Choice(_n(20 * 4096), False, "That is prompt tuning: vectors at the input layer only."),
                Choice(_n(20 * 32 * 4096), False, "Keys and values are separate: twice this."),
            ),
        ),
        Question(
            "family",
            "Which method changes only bias terms?",
            (
                Choice("BitFit", True, "It trains every bias (and the task head) and nothing else."),
                Choice("IA3", False, "IA3 learns scaling vectors on activations, not biases."),
                Choice("Prompt tuning", False, "Prompt tuning trains input embeddings."),
            ),
            "PEFT methods are interchangeable.",
        ),
        Question(
            "mergeable",
            "Which pair of methods can be folded into the weights, so that inference costs nothing extra?",
            (
                Choice(
                    "LoRA and IA3",
                    True,
                    "LoRA's (α/r)·B·A adds to W; IA3's vector scales W's rows or columns. "
                    "Either way the result is one matrix of the original shape.",
                ),
                Choice(
                    "Adapters and LoRA",
                    False,
                    "An adapter has a nonlinearity between its two projections, so "
                    "it cannot be folded into a matrix: it stays an extra layer.",
                ),
                Choice(
                    "Prefix tuning and prompt tuning",
                    False,
                    "They add keys, values or input vectors rather than "
                    "changing a weight, so every request still carries them.",
                ),
                Choice("None of them", False, "LoRA's merge W' = W + (α/r)·B·A is exact."),
            ),
            "Every PEFT method adds inference latency.",
        ),
        Question(
            "prefix-vs-prompt",
            f"At the same number of virtual tokens, how many times more numbers does "
            f"prefix tuning train than prompt tuning in a {_LAYERS_12}-layer model?",
            (
                Choice(
                    f"{_PREFIX_RATIO}×",
                    True,
                    f"A key and a value vector per token in every layer, n·2·d·L, "
                    f"against n·d at the input only: 2 × {_LAYERS_12}.",
                ),
                Choice(
                    "The same: they are one method",
                    False,
                    "Prompt tuning acts only at the input; prefix tuning acts on the attention of every layer.",
                ),
                Choice(f"{_LAYERS_12}×", False, "Keys and values are separate vectors: twice that."),
                Choice("2×", False, "That leaves out the factor L for the layers."),
            ),
            "Prefix tuning and prompt tuning are the same thing.",
        ),
    ),
    9: (
        Question(
            "choose",
            "Many tasks on one GPU server, latency matters, quality close to full fine-tuning: which fits best?",
            (
                Choice(
                    "LoRA, merged per task or swapped per request",
                    True,
                    "Small per-task files, strong quality, and zero added latency when merged.",
                ),
                Choice("Full fine-tuning per task", False, "Each task would need its own complete copy."),
                Choice(
                    "Prompt tuning",
                    False,
                    "Cheapest to store, but usually the weakest on smaller models and it lengthens every input.",
                ),
            ),
        ),
    ),
}


def _shuffled(question: Question) -> dict:
    # A fixed order per question that does not put the right answer first: stable across
    # reloads (progress is stored by choice text) and the same for every student.
    order = sorted(question.choices, key=lambda c: hashlib.sha256(f"{question.id}:{c.text}".encode()).hexdigest())
    return {**asdict(question), "choices": [asdict(c) for c in order]}


def as_json() -> dict:
    """The quizzes as the page uses them: chapter number → list of questions."""
    return {str(ch): [_shuffled(q) for q in qs] for ch, qs in QUIZZES.items()}
