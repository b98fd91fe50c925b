"""P2 Memory calculator: the formulas in simulations/memory.py and their JSON endpoints.

Seed figures are cited as seed file : line. GB = 10⁹ bytes, as the seeds use it.
"""

import pytest

from simulations import memory
from simulations.memory import PRESETS, Settings, estimate, with_params

URL = "/api/playgrounds/memory-calculator"
LAB_URL = "/api/playgrounds/memory-calculator/lab"
GB = 1e9


def parts(model, method, **settings):
    return {p.key: p for p in memory.state_parts(model, method, Settings(**settings))}


def test_it_reproduces_the_175b_mixed_precision_table_without_a_master_copy():
    # seed 000:10-14: fp16 weights 350 GB + fp16 gradients 350 GB + Adam m 700 GB + v 700 GB
    # ≈ 2.1 TB (12 bytes/param: the seed keeps no fp32 master copy).
    gpt3 = with_params(PRESETS["gpt3-175b"], 175e9)
    p = parts(gpt3, "full-mixed", master_weights=False)
    assert [p[k].bytes / GB for k in ("weights", "gradients", "adam_m", "adam_v")] == [350, 350, 700, 700]
    assert "master" not in p
    assert sum(x.bytes for x in p.values()) == pytest.approx(2.1e12)
    assert p["weights"].formula == "1.75e11 params × 2 bytes = 350.0 GB"


def test_it_adds_the_fp32_master_copy_when_asked_16_bytes_per_param():
    # ZeRO (Rajbhandari et al. 2020) counts 16 bytes/param; seed 000:226 says 12. The 4 bytes
    # between them are the master copy, which the page lets the user switch.
    gpt3 = with_params(PRESETS["gpt3-175b"], 175e9)
    p = parts(gpt3, "full-mixed", master_weights=True)
    assert p["master"].bytes == 700 * GB
    assert sum(x.bytes for x in p.values()) == pytest.approx(2.8e12)


def test_it_reproduces_7b_13b_70b_in_fp32():
    # seed 003:34 and 003:41-44: 7B fp32: 28 + 28 + 56 GB; 13B: 52 + 52 + 104; 70B: 280 + 280 + 560.
    for n, weights in ((7e9, 28), (13e9, 52), (70e9, 280)):
        p = parts(with_params(PRESETS["llama-7b"], n), "full-fp32")
        assert p["weights"].bytes / GB == pytest.approx(weights)
        assert p["gradients"].bytes / GB == pytest.approx(weights)
        assert (p["adam_m"].bytes + p["adam_v"].bytes) / GB == pytest.approx(2 * weights)
        assert "master" not in p  # fp32 training has no separate master copy


def test_it_reproduces_7b_fp16_weights_and_ten_copies():
    # seed 001:19 "A 7B model in 16-bit weights is 14 GB"; 001:21 ten copies = 140 GB.
    seven = with_params(PRESETS["llama-7b"], 7e9)
    assert parts(seven, "lora")["weights"].formula == "7.00e9 params × 2 bytes = 14.0 GB"
    st = memory.storage(seven, Settings(rank=8, targets=("query", "value")))
    assert st["full_copies"][9] == 140 * GB
    # Ten r=8 Q,V adapters on 32 layers of d=4096: 10 × 4.19M × 2 bytes ≈ 84 MB beside the base.
    assert st["adapter_bytes"] == 32 * 2 * 8 * (4096 + 4096) * 2
    assert st["base_plus_adapters"][9] == pytest.approx(14 * GB + 10 * st["adapter_bytes"])


def test_it_derives_the_double_quantization_overhead():
    # seed 003:220: 0.5 bits/param of constants → ~0.127 with double quantization.
    assert memory.quant_constant_bits(False) == 0.5  # one fp32 absmax per 64 weights
    # 8-bit absmax per 64 weights + one fp32 second-level constant per 256 blocks.
    assert memory.quant_constant_bits(True) == pytest.approx(8 / 64 + 32 / (64 * 256))
    assert round(memory.quant_constant_bits(True), 3) == 0.127
    # seed 004:78 "saving a further ~0.4 bits per parameter": 0.5 − 0.127 = 0.373.
    assert 0.5 - memory.quant_constant_bits(True) == pytest.approx(0.373, abs=0.001)


def test_it_reproduces_the_7b_block_constants():
    # seed 003:218: 7B with block size 64 → about 110M fp32 constants = 440 MB.
    constants = 7e9 / memory.BLOCK
    assert constants == pytest.approx(110e6, rel=0.01)
    assert 7e9 * memory.quant_constant_bits(False) / 8 == pytest.approx(440e6, rel=0.01)


def test_it_fits_65b_qlora_on_one_48_gb_gpu():
    # seed 004:76, 001:175, 003:243: QLoRA fine-tunes a 65B model on one 48 GB GPU. With the
    # QLoRA paper's recipe (r = 64 on every linear layer, paged AdamW, checkpointing), batch 1,
    # 512 tokens, the estimate stays under 48 GB.
    llama65 = PRESETS["llama-65b"]
    s = Settings(rank=64, targets=memory.TARGETS, optimizer="paged32", checkpointing=True, master_weights=False)
    est = estimate(llama65, s)
    total = est.parts["qlora"]
    fixed = sum(p.bytes for p in total)
    act = est.activations["qlora"][memory.BATCHES.index(1)][memory.SEQS.index(512)]
    assert fixed + act < 48 * GB
    # ... and full fine-tuning of the same model is far beyond it (seed 004:80 "~700 GB" for 65B
    # with its own conventions; 16 bytes/param gives ~1 TB before activations).
    assert sum(p.bytes for p in est.parts["full-mixed"]) > 700 * GB


def test_it_reproduces_65b_base_in_4_bits():
    # seed 001:157-159: 65B in 16-bit is 130 GB; in 4-bit "about 33 GB".
    p = parts(with_params(PRESETS["llama-65b"], 65e9), "lora")
    assert p["weights"].bytes == 130 * GB
    q = parts(PRESETS["llama-65b"], "qlora")
    assert 32 * GB < q["weights"].bytes + q["quant_constants"].bytes < 34 * GB


def test_it_counts_preset_parameters_from_their_configs():
    # GPT-3: 96 layers, d = 12288 (Brown et al. 2020) → ~175B; LLaMA 7B/13B/65B; BERT-base 110M.
    assert PRESETS["gpt3-175b"].config_params() == pytest.approx(175e9, rel=0.01)
    assert PRESETS["llama-7b"].config_params() == pytest.approx(6.74e9, rel=0.01)
    assert PRESETS["llama-13b"].config_params() == pytest.approx(13.0e9, rel=0.01)
    assert PRESETS["llama-65b"].config_params() == pytest.approx(65.2e9, rel=0.01)
    assert PRESETS["llama-70b"].config_params() == 68_976_648_192
    assert PRESETS["bert-base"].config_params() == 109_482_240


def test_it_estimates_activations_by_korthikanti():
    # Korthikanti et al. 2022: 16-bit, 4h FFN → s·b·h·(34 + 5·a·s/h) bytes per layer.
    gpt3 = PRESETS["gpt3-175b"]
    s, b, h, a = 2048, 1, 12288, 96
    act, text = memory.activation_bytes(gpt3, b, s, 2, Settings(lm_logits=False))
    assert act == 96 * s * b * h * (34 + 5 * a * s / h)
    # seed 000:228: 175B, batch 1, sequence 2048 → "200+ GB" of activations.
    assert act > 200 * GB
    assert text.endswith(f"= {memory.fmt_bytes(act)}")
    flash, _ = memory.activation_bytes(gpt3, b, s, 2, Settings(lm_logits=False, flash=True))
    assert flash == 96 * 34 * s * b * h
    ckpt, _ = memory.activation_bytes(gpt3, b, s, 2, Settings(lm_logits=False, checkpointing=True))
    assert ckpt == 96 * 2 * s * b * h + s * b * h * (34 + 5 * a * s / h)
    assert ckpt < flash < act


def test_it_scales_activations_linearly_with_batch():
    est = estimate(PRESETS["llama-7b"], Settings())
    grid = est.activations["lora"]
    assert grid[1][3] == pytest.approx(2 * grid[0][3])


def test_lora_keeps_activations_and_drops_optimizer_state():
    # seed 000:226: LoRA r=8's trainable parameters need optimizer state; the frozen base none.
    est = estimate(PRESETS["llama-7b"], Settings(rank=8, targets=("query", "value")))
    lora = {p.key: p for p in est.parts["lora"]}
    assert lora["adam_m"].bytes == 4 * 32 * 2 * 8 * 8192
    assert est.trainable["lora"] == 4_194_304
    # Activations are about the same as full fine-tuning's: the forward pass is the same.
    assert est.activations["lora"][0][4] == pytest.approx(est.activations["full-mixed"][0][4], rel=0.01)


def test_it_refuses_bad_settings():
    with pytest.raises(ValueError, match="rank must be between 1 and 4096"):
        estimate(PRESETS["llama-7b"], Settings(rank=5000))
    with pytest.raises(ValueError, match="targets"):
        estimate(PRESETS["llama-7b"], Settings(targets=("bogus",)))
    with pytest.raises(ValueError, match="optimizer"):
        estimate(PRESETS["llama-7b"], Settings(optimizer="sgd"))


def test_it_predicts_a_lab_run_of_minilm():
    from workers.base_model import memory_model as minilm

    m = minilm()
    assert (m.layers, m.hidden, m.heads) == (6, 384, 12)
    full = memory.lab_prediction(m, "full", 16, 0, [])
    # 22.7M parameters (its model card) in fp32 with AdamW: 16 bytes each before activations.
    assert full["trainable"] == pytest.approx(22.7e6, rel=0.01)
    assert full["params"] + full["grads"] + full["optimizer_state"] == 16 * full["trainable"]
    lora = memory.lab_prediction(m, "lora", 16, 8, ["query", "value"])
    qlora = memory.lab_prediction(m, "qlora", 16, 8, ["query", "value"])
    assert lora["optimizer_state"] == qlora["optimizer_state"] < full["optimizer_state"] / 100
    assert qlora["params"] < lora["params"]


# --- the endpoints ------------------------------------------------------------------------------
def test_it_serves_every_method_and_the_gpu_lines(client):
    body = client.get(URL, {"preset": "gpt3-175b", "params": 175e9, "master": False}).json()
    assert [m["key"] for m in body["methods"]] == list(memory.METHODS)
    mixed = next(m for m in body["methods"] if m["key"] == "full-mixed")
    assert mixed["fixed_bytes"] == pytest.approx(2.1e12)
    assert [g["bytes"] for g in body["gpu_lines"]] == [24e9, 48e9, 80e9]
    assert len(mixed["activations"]) == len(body["batches"])
    assert len(mixed["activations"][0]) == len(body["seqs"])
    assert "minilm" in body["presets"]


def test_it_takes_a_custom_config(client):
    body = client.get(
        URL,
        {"preset": "custom", "arch": "gpt", "layers": 2, "hidden": 64, "heads": 4, "vocab": 100, "ffn": 256, "rank": 4},
    ).json()
    assert body["model"]["layers"] == 2
    assert body["model"]["total_params"] == body["model"]["config_params"]


@pytest.mark.parametrize(
    "query, message",
    [
        ({"preset": "nope"}, "preset must be custom or one of"),
        ({"rank": 0}, "rank must be between 1 and"),
        ({"targets": "query,bogus"}, "targets must be one or more of"),
        ({"preset": "custom", "hidden": 100, "heads": 3}, "multiple of heads"),
    ],
)
def test_it_answers_400_with_a_reason(client, query, message):
    resp = client.get(URL, query)
    assert resp.status_code == 400
    assert message in resp.json()["error"]


def test_it_predicts_lab_runs_over_http(client):
    body = client.get(
        LAB_URL, {"method": "qlora", "batch_size": 8, "rank": 8, "targets": "query,attention_output"}
    ).json()
    assert body["total"] == pytest.approx(
        body["params"] + body["grads"] + body["optimizer_state"] + body["activations"]
    )
    assert body["seq"] == memory.LAB_SEQ
    assert body["precision"] == "fp32"
    resp = client.get(LAB_URL, {"method": "magic"})
    assert resp.status_code == 400 and "method must be" in resp.json()["error"]
    # A run under bf16 autocast is predicted as one: its weights' bf16 copies add activations.
    bf16 = client.get(LAB_URL, {"method": "lora", "precision": "bf16 autocast"}).json()
    fp32 = client.get(LAB_URL, {"method": "lora"}).json()
    assert bf16["precision"] == "bf16 autocast" and bf16["activations"] > fp32["activations"]
    resp = client.get(LAB_URL, {"method": "lora", "precision": "fp16"})
    assert resp.status_code == 400 and "precision must be one of fp32, bf16 autocast" in resp.json()["error"]
    # On CUDA a dropout mask is one byte an element; on the CPU, the dropped tensor's 4.
    cuda = client.get(LAB_URL, {"method": "lora", "device": "cuda"}).json()
    assert fp32["device"] == "cpu" and cuda["device"] == "cuda" and cuda["activations"] < fp32["activations"]
    resp = client.get(LAB_URL, {"method": "lora", "device": "tpu"})
    assert resp.status_code == 400 and "device must be one of cpu, cuda" in resp.json()["error"]


# --- P1 Cost of fine-tuning (simulations/cost.py) -------------------------------------------------
COST_URL = "/api/playgrounds/cost-of-fine-tuning"


def test_it_reproduces_gpt3_pretraining_cost():
    # seed 000:2 "It cost roughly $4.6 million in compute to train" (300B tokens): 6·N·D FLOPs on
    # V100s sustaining 28 TFLOP/s at $1.50/GPU-hour (Lambda Labs' estimate) gives $4.69M.
    from simulations import cost

    p = cost.pretrain_cost()
    assert cost.train_flops(175e9, 300e9) == pytest.approx(3.15e23)
    assert p["cost"] == pytest.approx(4.6e6, rel=0.03)
    assert p["formula"].endswith("$4.69M")


def test_it_reproduces_the_seed_gpu_hours_table_within_a_third():
    # seed 000:17-24: 1,200 GPU-hours for 175B on A100, 400 for 65B, 80 for 13B, 40 for 7B, 8 for
    # 1.5B. 500M tokens per run at 40% of an A100's 312 TFLOP/s reproduces these within 30%; the
    # 125M row (0.5 h) does not follow (the seed's rows grow faster than N: see source_notes).
    from simulations import cost

    rows = {r["key"]: r for r in cost.table(cost.Settings())}
    assert rows["gpt3-175b"]["gpu_hours"] == pytest.approx(1200, rel=0.05)
    for key in ("gpt2-xl", "llama-7b", "llama-13b", "llama-65b"):
        assert rows[key]["gpu_hours"] == pytest.approx(cost.SEED_TABLE[key][0], rel=0.3)


def test_it_prices_gpu_hours_as_the_seed_table_does():
    # seed 000:16-24: $25/hour for an 8×A100 node: 1,200 GPU-hours → ~$3,750; 40 → ~$125.
    from simulations import cost

    s = cost.Settings()
    assert 1200 * s.price == pytest.approx(3750)
    assert 40 * s.price == pytest.approx(125)


def test_it_reproduces_ten_gpt3_checkpoints():
    # seed 000:3-4: 350 GB per GPT-3 checkpoint, ten tasks → 3.5 TB; the table's 700 GB is fp32.
    from simulations import cost

    rows = {r["key"]: r for r in cost.table(cost.Settings(bytes_per_param=2))}
    assert rows["gpt3-175b"]["checkpoint_bytes"] == 350e9
    assert rows["gpt3-175b"]["storage_bytes"][9] == 3.5e12
    rows4 = {r["key"]: r for r in cost.table(cost.Settings(bytes_per_param=4))}
    assert rows4["gpt3-175b"]["checkpoint_bytes"] == 700e9  # seed 000:24
    assert rows4["llama-7b"]["checkpoint_bytes"] == 28e9  # seed 000:21
    assert rows4["llama-65b"]["checkpoint_bytes"] == 260e9  # seed 000:23


def test_it_multiplies_by_tasks_and_runs_and_flags_the_seed():
    from simulations import cost

    rows = {r["key"]: r for r in cost.table(cost.Settings())}
    gpt3 = rows["gpt3-175b"]
    assert gpt3["total_cost"][9][2] == pytest.approx(30 * gpt3["cost"])
    # seed 000:6 "the jump from 6.7B to 175B is roughly 40×": the formula gives 175/6.7 ≈ 26×.
    assert cost.jump(list(rows.values())) == pytest.approx(175 / 6.7)
    notes = " ".join(n["text"] for n in cost.source_notes(cost.Settings()))
    # seed 000:3 "$1.2 million per training run" vs its own table's $3,750: flagged, 320×.
    assert "$3,750" in notes and "320×" in notes and "26×" in notes


def test_it_serves_the_cost_table(client):
    body = client.get(COST_URL, {"tokens": 1e9, "gpu": "h100"}).json()
    assert [m["key"] for m in body["models"]][-1] == "gpt3-175b"
    assert len(body["models"][0]["total_cost"]) == len(body["tasks"])
    assert len(body["models"][0]["total_cost"][0]) == len(body["runs"])
    resp = client.get(COST_URL, {"utilisation": 2})
    assert resp.status_code == 400 and "utilisation must be between" in resp.json()["error"]


def test_every_architecture_has_a_short_name_and_its_details():
    # The name fills a select on a phone (static/js/memory.js); what sets it apart is a line below.
    assert set(memory.ARCH_DETAILS) == set(memory.ARCHS)
    assert all(len(name) <= 24 for name in memory.ARCHS.values())


# --- the lecture's figures, corrected beside its own ------------------------------------------


def test_the_optimizer_states_alone_fill_18_a100s_not_27():
    # The lecture: "You need at least 27 A100s just for the optimizer states". 27 × 80 GB holds its
    # whole 12-byte training state (2.1 TB); Adam's m and v (8 bytes × 175B = 1.4 TB) need 18.
    checks = memory.lecture_checks()
    assert checks["state_bytes"] == pytest.approx(2.1e12) and checks["state_a100s"] == 27
    assert checks["optimizer_bytes"] == pytest.approx(1.4e12) and checks["optimizer_a100s"] == 18
    assert memory.gpus_to_hold(80e9) == 1 and memory.gpus_to_hold(81e9) == 2
    note = memory.source_notes()[0]["text"]
    assert "27 A100s just for the optimizer states" in note and "2.10 TB" in note and "1.40 TB: 18 A100s" in note


def test_loras_optimizer_state_is_8_bytes_per_parameter():
    # The lecture: "4.7M × 12 bytes = 56 MB" of optimizer state; Adam's m and v are 8 bytes: 37.6 MB.
    checks = memory.lecture_checks()
    assert memory.adam_state_bytes(1) == 8 and memory.adam_state_bytes(1, "adam8") == 2
    assert checks["lora_optimizer_bytes"] == pytest.approx(37.6e6)
    assert checks["lora_quoted_bytes"] == pytest.approx(56.4e6)
    note = memory.source_notes()[1]["text"]
    assert "4.7M × 12 bytes = 56 MB" in note and "37.6 MB" in note


def test_the_lectures_llama_2_70b_printout_is_gpt3s_count():
    # The lecture's printout for Llama-2-70B, r = 16 on q_proj and v_proj: "trainable params:
    # 18,874,368". With 8 KV heads v_proj maps 8192 → 1024: 80 · 16 · (16384 + 9216) = 32,768,000.
    # 18,874,368 is GPT-3's Q and V at r = 4: 96 · 2 · 4 · (12288 + 12288).
    checks = memory.lecture_70b_checks()
    assert PRESETS["llama-70b"].kv_dim == 1024
    assert checks["formula"] == 80 * 16 * ((8192 + 8192) + (8192 + 1024)) == 32_768_000
    assert checks["gpt3_qv_r4"] == 96 * 2 * 4 * (12288 + 12288) == checks["printed"] == 18_874_368
    # "a 70B model on a consumer RTX 4090 (24 GB)": its 4-bit weights alone are 35 GB.
    assert checks["weights_4bit_bytes"] == pytest.approx(35e9) and checks["card_bytes"] == 24e9
    assert checks["weights_4bit_bytes"] > checks["card_bytes"]
    assert checks["weights_nf4_dq_bytes"] == pytest.approx(70e9 * (4 + 8 / 64 + 32 / (64 * 256)) / 8)


def test_the_qlora_playground_serves_the_70b_checks(client):
    body = client.get("/api/playgrounds/qlora").json()
    assert body["memory"]["lecture_70b"] == memory.lecture_70b_checks()
