"""Train on your own CSV in a real browser: the training page's upload panel sends a good CSV,
the new task is selected at once and Train trains on it (the embedded lab's real worker); a bad
CSV's refusal is shown as the server words it, and nothing is added to the task list."""

import re

import pytest
from playwright.sync_api import expect

from peftlab.api import uploads
from tests.support.browsing import ROOT, expect_console_error, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXAMPLE = ROOT / "static" / "examples" / "peftlab-example.csv"
TRAIN_TIMEOUT_MS = 240_000


def open_train_page(page) -> None:
    page.goto("/train/")
    page.wait_for_selector('#train-root[data-ready="1"]', state="attached")


def choose_file(page, name: str, data: bytes) -> None:
    page.set_input_files("#u-file", files=[{"name": name, "mimeType": "text/csv", "buffer": data}])


def test_an_uploaded_csv_is_selected_at_once_and_trains(page, embedded_lab):
    open_train_page(page)
    # The example CSV the panel links to is served, and is a valid upload.
    href = page.locator("#example-csv").get_attribute("href")
    served = page.request.get(href)
    assert served.status == 200 and served.body() == EXAMPLE.read_bytes()

    choose_file(page, "support tickets.csv", EXAMPLE.read_bytes())
    page.fill("#u-name", "Support tickets")
    with page.expect_response(lambda r: r.url.endswith("/api/datasets") and r.request.method == "POST") as answer:
        page.click("#upload-button")
    assert answer.value.status == 201
    dataset = answer.value.json()
    expect(page.locator("#f-task")).to_have_value(dataset["task"])
    expect(page.locator("#f-task option:checked")).to_have_text("Support tickets")
    expect(page.locator("#f-task optgroup[label='Uploaded CSVs'] option")).to_have_count(1)
    expect(page.locator("#task-summary")).to_contain_text(
        "Labels: billing, bug, praise; 24 train / 6 validation examples."
    )
    expect(page.locator("#upload-status")).to_contain_text(
        "“Support tickets” uploaded: 24 training and 6 validation examples"
    )
    expect(page.locator("#delete-upload")).to_be_visible()
    shot(page, "train-upload-selected")

    # Train works at once, on the upload.
    page.fill("#f-steps", "3")
    page.fill("#p-rank", "4")
    page.fill("#p-batch_size", "8")
    page.click("#train-button")
    page.wait_for_url(re.compile(r"/train/\?run=\d+$"))
    page.wait_for_function(
        "() => document.getElementById('train-root').dataset.runStatus === 'succeeded'", timeout=TRAIN_TIMEOUT_MS
    )
    expect(page.locator("#run-title")).to_have_text(re.compile(rf"^Run \d+: lora on {dataset['task']}$"))
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^succeeded: 3 of 3 steps"))
    shot(page, "train-upload-trained")


def test_a_bad_csv_shows_the_servers_reason_and_adds_no_task(page, embedded_lab):
    open_train_page(page)
    before = page.locator("#f-task option").count()
    one_label = b"text,label\n" + b"".join(b"sentence %d,same\n" % i for i in range(8))
    expect_console_error(page, r"Failed to load resource: the server responded with a status of 400")
    choose_file(page, "one-label.csv", one_label)
    with page.expect_response(lambda r: r.url.endswith("/api/datasets")) as answer:
        page.click("#upload-button")
    assert answer.value.status == 400
    message = answer.value.json()["error"]
    assert message.startswith("every example has the label 'same'")
    expect(page.locator("#upload-error")).to_have_text(message)  # verbatim
    expect(page.locator("#upload-status")).to_have_text("")
    assert page.locator("#f-task option").count() == before
    shot(page, "train-upload-refused")

    # Not UTF-8: the byte and where it is.
    expect_console_error(page, r"Failed to load resource: the server responded with a status of 400")
    choose_file(page, "latin1.csv", "text,label\ncafé,a\n".encode("latin-1"))
    page.click("#upload-button")
    expect(page.locator("#upload-error")).to_contain_text("the file is not UTF-8 (byte 0xe9 at position 14, line 2)")
    assert uploads.MAX_BYTES == 2_000_000  # the panel's "2 MB" comes from here
    expect(page.locator(".upload-rules")).to_contain_text("At most 2 MB and 5,000 rows")
