"""The page at `GET /`, in a real headless Chromium: a person types texts, clicks Classify,
and sees each text's label and one probability bar per label, the bars as long as predict's
probabilities. Skipped (with the reason) where no Chromium is installed.

The screenshot in docs/deploying.md is this same flow on a fine-tuned MiniLM:
`python scripts/serve_page_screenshot.py MODEL_FOLDER docs/images/serve-page.png`.
"""

from __future__ import annotations

import pytest
import test_serve
from chromium import Chromium, find_chromium
from test_predictor import TEXTS
from test_serve import running

from modernbert_tasks.serving import load_for_serving

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="needs Chromium for the page test: apt-get install chromium (or put chromium, "
    "chromium-browser or google-chrome on PATH)",
)

calibrated_dir = test_serve.calibrated_dir  # the fixture: a model with a tuned threshold
TYPED = [TEXTS[0], TEXTS[1], "   ", TEXTS[2]]  # a blank line is dropped by the page


def test_a_person_types_texts_and_sees_labels_and_probability_bars(calibrated_dir, tmp_path):
    model = load_for_serving(calibrated_dir, precision="fp32", max_length=16)
    sent = [t for t in TYPED if t.strip()]
    expected = model.predict(sent)
    with running(model) as (url, state), Chromium.start(width=900, height=800) as browser:
        browser.open(url + "/")
        assert browser.evaluate("document.title").startswith("modernbert-tasks")
        browser.type_into("#t", "\n".join(TYPED))
        assert browser.evaluate("document.getElementById('t').value") == "\n".join(TYPED)
        browser.click("button[type=submit]")
        browser.wait_for(f"document.querySelectorAll('.card').length === {len(sent)}")
        cards = browser.evaluate(
            """[...document.querySelectorAll('.card')].map(card => ({
                 text: card.querySelector('.text').textContent,
                 label: card.querySelector('.label').textContent,
                 rows: [...card.querySelectorAll('.row')].map(row => ({
                   name: row.querySelector('.name').textContent,
                   number: parseFloat(row.querySelector('.num').textContent),
                   width: row.querySelector('.fill').getBoundingClientRect().width
                          / row.querySelector('.bar').getBoundingClientRect().width,
                 })),
               }))"""
        )
        png = browser.screenshot()
        predict_calls = state.metrics.batch_size.n
    assert predict_calls >= 1  # the page's texts went through the server's model
    assert [c["text"] for c in cards] == sent
    for card, record in zip(cards, expected, strict=True):
        assert card["label"] == record["label"]  # predict's label, the tuned threshold included
        assert {r["name"] for r in card["rows"]} == set(model.labels)  # one bar per label
        for row in card["rows"]:
            probability = record["probabilities"][row["name"]]
            assert row["number"] == pytest.approx(probability, abs=5e-4)
            assert row["width"] == pytest.approx(probability, abs=0.01)  # the bar's length
        shown = [r["number"] for r in card["rows"]]
        assert shown == sorted(shown, reverse=True)  # the most probable label on top
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    (tmp_path / "page.png").write_bytes(png)


def test_the_page_says_what_the_server_refused(calibrated_dir):
    model = load_for_serving(calibrated_dir, precision="fp32", max_length=16)
    with running(model, max_inputs=2) as (url, _), Chromium.start() as browser:
        browser.open(url + "/")
        browser.type_into("#t", "one\ntwo\nthree")
        browser.click("button[type=submit]")
        browser.wait_for("document.querySelector('.err') !== null")
        error = browser.evaluate("document.querySelector('.err').textContent")
    assert "at most 2" in error and "max_inputs" in error
