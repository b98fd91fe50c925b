"""Chapter pages: the text's figures come from the formulas, every chapter renders its playgrounds
(live ones framed, the others marked as coming), and a playground page can be framed."""

import re

import pytest
from django.test import Client

from peftlab.pages.chapters import CHAPTERS
from simulations import chapter_facts, quizzes

pytestmark = pytest.mark.django_db


def test_chapter_one_quotes_the_seed_memory_figures():
    f = chapter_facts.for_chapter(1)
    # Seed 000: 175B with fp16 weights and gradients and fp32 Adam m and v:
    # 350 + 350 + 700 + 700 GB ≈ 2.1 TB.
    assert f["gpt3_mixed"] == "2.10 TB"
    # Seed 001 ch0: 7B in fp32 with Adam: 28 + 28 + 56 GB = 112 GB before activations.
    assert f["seven_fp32"] == "112.0 GB"
    # Seed 001 ch0: one 7B copy in 16-bit weights is 14 GB; ten tasks, ten copies.
    assert (f["seven_copy"], f["ten_copies"]) == ("14.0 GB", "140.0 GB")


def test_adapter_lora_and_prefix_figures_match_the_seeds():
    # Seed 000: an adapter with m = 64 on d = 1024 has 2·1024·64 = 131,072 weights, 8× fewer
    # than a 1024×1024 layer.
    assert chapter_facts.for_chapter(4) == {"adapter_1024_64": "131,072", "adapter_ratio": "8"}
    # Seed 001 ch3: r = 8 on a 4096×4096 matrix: 65,536 parameters = 0.39 % of 16,777,216.
    assert chapter_facts.for_chapter(5) == {
        "lora_4096_r8": "65,536",
        "lora_4096_share": "0.39%",
        "full_4096": "16,777,216",
    }
    # Seed 000: prefix of 20 tokens × 32 layers × 2 × 4096 = 5.2M; prompt tuning 20 × 4096.
    f = chapter_facts.for_chapter(8)
    assert f["prefix_20_32_4096"] == "5.24e6"
    assert f["prompt_20_4096"] == "81,920"


def test_qlora_figures_match_the_seeds():
    f = chapter_facts.for_chapter(7)
    # Seeds 001 ch6 and 003: fp32 constants per 64 weights cost 0.5 bits (4.5 in all); double
    # quantization brings the overhead to ~0.127 bits.
    assert (f["nf4_bits"], f["nf4_dq_bits"]) == ("4.5", "4.127")
    # Seed 003: QLoRA fits a 65B model on one 48 GB GPU; 16-bit weights alone are 130 GB.
    assert f["fp16_65b"] == "130.0 GB"
    assert float(f["qlora_65b"].split()[0]) < 48


def test_the_serving_chapter_compares_copies_with_adapters():
    f = chapter_facts.for_chapter(6)
    assert f["hundred_copies"] == "1.40 TB"
    # r = 8 on q and v of a 32-layer d = 4096 model: 32 · 2 · 2·4096·8 = 4.19M numbers, 8.4 MB in
    # 16-bit (seed 002: "a few megabytes").
    assert f["seven_lora_qv"] == "8.4 MB"


@pytest.fixture
def client():
    return Client()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda ch: f"chapter-{ch.number}")
def test_every_chapter_page_frames_its_live_playgrounds_and_marks_the_others(client, chapter):
    html = client.get(f"/chapters/{chapter.number}/").content.decode()
    assert f"<h1>{chapter.title}</h1>" in html
    for pg in chapter.playgrounds:
        framed = f'src="/playgrounds/{pg.slug}/?embed=1"' in html
        assert framed == pg.live, pg.pid
        assert f'data-slug="{pg.slug}"' in html
    assert html.count("This playground is coming.") == sum(not pg.live for pg in chapter.playgrounds)
    assert 'class="note"><strong>Misconception:</strong>' in html
    assert ('id="quiz-root"' in html) == bool(quizzes.QUIZZES.get(chapter.number))
    # Every figure the text quotes is filled in: no empty {{ facts.x }}.
    for value in chapter_facts.for_chapter(chapter.number).values():
        assert value in html
    assert not re.search(r"\s(is|are|of|in|be) +(,|\.|;)", html)


def test_the_text_shows_the_computed_figures(client):
    html = client.get("/chapters/5/").content.decode()
    assert "rank\n8 has 65,536, 0.39% of it" in html


def test_chapters_link_to_their_neighbours(client):
    first = client.get("/chapters/1/").content.decode()
    assert 'href="/chapters/2/" rel="next"' in first and 'rel="prev"' not in first
    last = client.get(f"/chapters/{CHAPTERS[-1].number}/").content.decode()
    assert 'rel="next"' not in last and f'href="/chapters/{CHAPTERS[-2].number}/" rel="prev"' in last


def test_an_unknown_chapter_is_a_404_that_says_so(client):
    response = client.get("/chapters/99/")
    assert response.status_code == 404


def test_a_framed_playground_drops_the_site_chrome_but_keeps_its_progress_hook(client):
    full = client.get("/playgrounds/adapter-block/")
    framed = client.get("/playgrounds/adapter-block/?embed=1")
    assert full.headers["X-Frame-Options"] == framed.headers["X-Frame-Options"] == "SAMEORIGIN"
    full, framed = full.content.decode(), framed.content.decode()
    assert 'class="site-header"' in full and 'class="site-header"' not in framed
    assert 'id="lesson-link"' in full and 'id="lesson-link"' not in framed
    assert '<base target="_top">' in framed and "<base" not in full
    for html in (full, framed):
        assert 'data-slug="adapter-block" id="progress-script"' in html


def test_the_home_page_links_every_chapter_with_its_quiz_and_live_playgrounds(client):
    html = client.get("/").content.decode()
    for chapter in CHAPTERS:
        assert f'href="/chapters/{chapter.number}/"' in html
        ids = " ".join(q.id for q in quizzes.QUIZZES.get(chapter.number, ()))
        assert f'data-quiz="{ids}"' in html
