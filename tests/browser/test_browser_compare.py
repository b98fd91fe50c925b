"""Comparing real runs in a real browser: three short runs trained by the embedded lab's Celery
worker, put side by side on the compare page, plotted on the Pareto view, a point clicked through
to its run page, whose "Reproduce it" script, run outside the lab, gives the run's own losses."""

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.support.browsing import default_precision, expect_console_error, shot
from tests.support.reproduce import assert_no_server_path, printed_losses, run_script

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STEPS = 6
RUNS = (
    ("lora", {"rank": 4, "batch_size": 8, "eval_every": 2}),
    ("bitfit", {"batch_size": 8, "eval_every": 2}),
    ("prompt", {"virtual_tokens": 4, "batch_size": 8, "eval_every": 3}),
)
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def runs(embedded_lab):
    """Three finished runs of the sentiment task (queued together: one worker trains them in turn)."""
    ids = []
    for method, params in RUNS:
        response = embedded_lab.post(
            "/api/runs", {"method": method, "task": "sentiment", "steps": STEPS, "seed": 1, "params": params}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    done = [embedded_lab.wait_for(i, timeout=240) for i in ids]
    assert [r["status"] for r in done] == ["succeeded"] * 3, [r["error"] for r in done]
    return done


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def traces(page, element_id: str) -> list[str]:
    return page.evaluate(f"() => document.getElementById('{element_id}').data.map((t) => t.name)")


def test_the_reproduce_script_of_a_run_gives_the_losses_the_lab_recorded(embedded_lab, runs, tmp_path):
    lora = runs[0]
    response = embedded_lab.client.get(f"/api/runs/{lora['id']}/script.py")
    assert response.status_code == 200
    # The script names no path of this server (the lab's var folder included): its data is embedded.
    assert_no_server_path(response.text, embedded_lab.var_dir)
    done = run_script(response.text, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = [p["loss"] for p in lora["points"]]
    assert printed_losses(done.stdout) == pytest.approx(recorded, abs=1e-4)
    accuracy = float(re.search(r"^validation accuracy: ([0-9.]+)$", done.stdout, re.M).group(1))
    assert accuracy == pytest.approx(lora["metrics"]["val_accuracy"], abs=0.006)


def test_it_compares_runs_picked_by_checkbox_and_keeps_the_selection_in_the_url(page, runs):
    ids = [r["id"] for r in runs]
    page.goto("/compare/")
    page.wait_for_selector('#compare-root[data-ready="1"]', state="attached")
    for run_id in ids:
        page.locator(f'#run-picks input[value="{run_id}"]').check()
    expect(page.locator("#compare-root")).to_have_attribute("data-shown", ",".join(map(str, ids)))
    assert query(page) == {"runs": ",".join(map(str, ids))}
    assert traces(page, "loss-chart") == [
        f"Run {r['id']} · {label}" for r, label in zip(runs, ("LoRA", "BitFit", "Prompt tuning"))
    ]
    assert len(traces(page, "accuracy-chart")) == 3
    # A column per run, a row per measurement.
    expect(page.locator("#compare-table thead th[data-run]")).to_have_count(3)
    lora = runs[0]["metrics"]
    row = page.locator("#compare-table tbody tr", has_text="trainable parameters")
    expect(row.locator("td").nth(0)).to_have_text(f"{lora['trainable_params']:,}")
    row = page.locator("#compare-table tbody tr", has_text="validation accuracy")
    expect(row.locator("td").nth(0)).to_have_text(f"{100 * lora['val_accuracy']:.1f} %")
    row = page.locator("#compare-table tbody tr", has_text="training steps computed in")
    expect(row.locator("td")).to_have_text([default_precision()] * 3)
    shot(page, "compare-three-runs")

    # The address is the comparison: opened afresh, it shows the same runs.
    shared = page.url
    page.goto(shared)
    expect(page.locator("#compare-root")).to_have_attribute("data-shown", ",".join(map(str, ids)))
    for run_id in ids:
        expect(page.locator(f'#run-picks input[value="{run_id}"]')).to_be_checked()
    page.locator(f'#run-picks input[value="{ids[1]}"]').uncheck()
    expect(page.locator("#compare-table thead th[data-run]")).to_have_count(2)
    assert query(page) == {"runs": f"{ids[0]},{ids[2]}"}
    page.set_viewport_size(PHONE)
    shot(page, "compare-phone", settle_ms=300)


def test_a_run_that_does_not_exist_is_said_so_on_the_compare_page(page, runs):
    expect_console_error(page, "404")
    page.goto("/compare/?runs=999999")
    expect(page.locator("#compare-error")).to_have_text("there is no run 999999")
    expect(page.locator("#run-picks input")).not_to_have_count(0)


def test_the_pareto_view_plots_every_run_and_a_click_opens_the_run(page, runs):
    page.goto("/pareto/?task=sentiment&x=params")
    page.wait_for_selector('#pareto-root[data-ready="1"]', state="attached")
    names = traces(page, "pareto-chart")
    assert {"LoRA", "BitFit", "Prompt tuning"} <= set(names) and names[-1] == "Pareto front"
    expect(page.locator("#front-list li")).not_to_have_count(0)
    page.locator("#all-runs summary").click()
    expect(page.locator("#all-list li")).to_have_count(
        len(
            page.evaluate(
                "() => document.getElementById('pareto-chart').data.slice(0, -1).flatMap((t) => t.customdata)"
            )
        )
    )
    expect(page.locator("#pareto-summary")).to_contain_text("succeeded run")
    shot(page, "pareto-params")

    page.get_by_label("peak memory").check()
    expect(page.locator("#pareto-chart")).to_have_attribute("data-x", "memory")
    assert query(page) == {"task": "sentiment", "x": "memory"}
    title = page.evaluate("() => document.getElementById('pareto-chart').layout.xaxis.title.text")
    assert title == "peak memory (MB = 2²⁰ bytes, log scale)"
    page.set_viewport_size(PHONE)
    shot(page, "pareto-phone", settle_ms=300)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.wait_for_timeout(300)

    # A real mouse click on the first plotted point opens its run.
    point = page.locator("#pareto-chart .scatterlayer .trace").first.locator("path.point").first
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(re.compile(r"/train/\?run=\d+$"))
    run_id = int(query(page)["run"])
    assert run_id in {r["id"] for r in runs}

    # The run page shows the code that reproduces it, with its downloads and a compare link.
    section = page.locator("#reproduce")
    expect(section).to_have_attribute("data-run", str(run_id))
    expect(page.locator("#repro-script")).to_contain_text(f"Reproduce PEFT Lab run {run_id}")
    expect(page.locator("#notebook-link")).to_have_attribute("href", f"/api/runs/{run_id}/notebook.ipynb")
    expect(page.locator("#compare-link")).to_have_attribute("href", f"/compare/?runs={run_id}")
    page.get_by_role("button", name="Copy the script").click()
    expect(page.locator("#copy-status")).not_to_be_empty()
    section.scroll_into_view_if_needed()
    shot(page, "run-reproduce")
    with page.expect_download() as download:
        page.locator("#notebook-link").click()
    assert download.value.suggested_filename.endswith(".ipynb")
    page.set_viewport_size(PHONE)
    section.scroll_into_view_if_needed()
    shot(page, "run-reproduce-phone", settle_ms=300)
