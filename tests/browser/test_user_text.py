"""User text shown as text in a real browser: hostile names never become images, links, colours or icons.

A hosted server of its own (KF_HOSTED=1). Its store holds a run trained (through kfcore.runs.jobs.execute_run, as the
CLI does) on an uploaded CSV whose column names and class labels are Markdown (one label is HTML, for the charts),
and the run's name is Markdown too; the page also uploads a CSV whose file name is Markdown, and opens a share
link whose data.name is. On every page, the share popover, Evaluate's "Samples in the cell" and the sidebar's
current run, no <img> or <a> from that text reaches the DOM (nor a colour, an icon or maths), and the literal
text shows. Last, the owner token that the page
puts into the `kf_owner` cookie is not left in the page. Screenshots land in artifacts/browser/.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kfcore.runs.store import RunStore
from tests.browser.conftest import REPO, VIEWPORT, exceptions, goto, nav, shot, start_server, stop_server, wait_idle
from ui.text import WORD_JOINER

HOST = "http://127.0.0.1:9"  # port 9 (discard): nothing answers there, and nothing may ever ask
RUN_NAME = f"![kfimg]({HOST}/x.png) [kflink]({HOST}/) :red[kfboom] :material/home:"
# Markdown for the page's text, HTML for Plotly's labels (it draws <a href> as a link).
LABELS = [f"[kfa]({HOST}/a)", f"![kfi]({HOST}/i.png)", f'<a href="{HOST}/p">kfplot</a>']
COLUMNS = [f"[kfc]({HOST}/c)", f"![kff]({HOST}/f.png)", ":red[kfkind] :material/home:"]
FILE_NAME = "![kfp](p.png) [kfu](mailto:kf@127.0.0.1) :red[kffile].csv"  # a file name has no slashes
DATA_NAME = f"![kfd]({HOST}/d.png) [kfdl]({HOST}/) :violet[kfdata]"
OWNER = "0123456789abcdef0123456789abcdef"
RUN_DEADLINE_S = 240  # the subprocess imports TensorFlow on a busy 2-core machine

# Everything on the page that user text could have become: an element pointing at HOST, an image or a link whose
# alt or text is one of ours (all start "kf"), Streamlit's colour and badge spans around our text, an icon drawn
# from ":material/home:" inside text (the navigation's Home icon is no Markdown), and KaTeX maths.
HOSTILE_DOM_JS = r"""
() => {
  const found = [];
  const show = el => el.outerHTML.slice(0, 160);
  for (const el of document.querySelectorAll('*')) {
    for (const attr of ['src', 'href', 'xlink:href', 'srcset', 'action', 'data']) {
      const v = el.getAttribute(attr);
      if (v && /127\.0\.0\.1:9(\/|$)/.test(v)) found.push(show(el));
    }
  }
  document.querySelectorAll('img[alt^="kf"]').forEach(el => found.push(show(el)));
  document.querySelectorAll('a').forEach(el => { if (el.textContent.trim().startsWith('kf')) found.push(show(el)); });
  document.querySelectorAll('[class*="stMarkdownColored"], [class*="stMarkdownBadge"]').forEach(el => {
    if (el.textContent.includes('kf')) found.push(show(el));
  });
  document.querySelectorAll('[aria-label="home icon"], .katex').forEach(el => found.push(show(el)));
  return found;
}
"""

# What `python -m kfcore train SPEC --store DIR` does, in one process.
TRAIN = """
import json, sys
from kfcore.runs.jobs import execute_run
from kfcore.spec import RunSpec
from kfcore.runs.store import RunStore
store = RunStore(sys.argv[1], recover=False)
spec, name, owner = json.loads(sys.argv[2])
run_id = store.create_run(RunSpec.from_dict(spec).to_dict(), name=name, owner=owner)
store.start_in_process(run_id)
result = execute_run(store, run_id)
assert result.status == "finished", result.error
print(run_id)
"""


def table_csv() -> bytes:
    """Two features that separate the three hostile classes, under hostile column names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in range(90):
        k = i % 3
        writer.writerow([round(k * 2 + (i % 5) * 0.1, 2), round(k % 2 + (i % 4) * 0.1, 2), LABELS[k]])
    return out.getvalue().encode()


def link(spec: dict) -> str:
    """A share-link token (as RunSpec.to_url makes it) for any spec, even one RunSpec would refuse."""
    raw = json.dumps(spec, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


@pytest.fixture(scope="module")
def hostile():
    """The hosted server, the path of the uploaded hostile CSV in its store, and the run trained on it."""
    from ui.datasets import save_upload

    home = Path(tempfile.mkdtemp(prefix="kf-user-text-"))
    path = save_upload("table.csv", table_csv(), root=home)  # where the Data page keeps an upload
    ref = f"{path.parent.name}/{path.name}"  # as the Data page records it: this browser's upload, by reference
    RunStore(home).add_upload(OWNER, ref, "table.csv")
    spec = {
        "data": {"source": "csv", "name": "table", "path": ref, "target": COLUMNS[-1]},
        "layers": [{"type": "Dense", "units": 8, "activation": "relu"}],
        "train": {"epochs": 2},
    }
    out = subprocess.run(
        [sys.executable, "-c", TRAIN, str(home), json.dumps([spec, RUN_NAME, OWNER])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_S,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = out.stdout.strip().splitlines()[-1]
    server = start_server(home=home, extra_env={"KF_HOSTED": "1"})
    try:
        yield server, path, run_id
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)


def text_of(page, selector: str = "body") -> str:
    """What a reader sees there: the invisible word joiners that keep addresses from being linked taken out."""
    return page.locator(selector).first.inner_text().replace(WORD_JOINER, "")


def assert_text_only(page, where: str) -> None:
    found = page.evaluate(HOSTILE_DOM_JS)
    assert not found, f"{where}: user text became markup: {found}"
    errors = exceptions(page)
    assert not errors, f"{where}: {errors}"


@pytest.mark.timeout(300)
def test_hostile_names_labels_and_file_names_show_as_text_on_every_page(browser, hostile):
    server, _, run_id = hostile
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
    context.add_cookies([{"name": "kf_owner", "value": OWNER, "url": server.url}])  # the browser the run is from
    try:
        page = context.new_page()
        goto(page, f"/?run={run_id}")
        assert_text_only(page, "home")
        sidebar = text_of(page, '[data-testid="stSidebar"]')
        assert RUN_NAME in sidebar and "finished" in sidebar  # the sidebar's current run
        shot(page, "user-text-home")

        page.locator(".st-key-share button").first.click()
        popover = page.locator('[data-testid="stPopoverBody"]')
        popover.wait_for()
        assert f"Run {RUN_NAME}" in text_of(page, '[data-testid="stPopoverBody"]')
        assert_text_only(page, "share popover")
        page.keyboard.press("Escape")

        nav(page, "Data")  # the run's CSV: hostile column names, class labels in the first rows
        assert_text_only(page, "data")
        assert page.locator(".st-key-target_column input").input_value() == COLUMNS[-1]
        page.locator(".st-key-upload input[type=file]").set_input_files(
            {"name": FILE_NAME, "mimeType": "text/csv", "buffer": table_csv()}
        )
        wait_idle(page)
        assert_text_only(page, "data after the upload")
        expect(page.locator('.st-key-upload [data-testid="stFileChipName"]')).to_have_attribute("title", FILE_NAME)
        shot(page, "user-text-data")

        for title in ("Model", "Train"):
            nav(page, title)
            assert_text_only(page, title)

        nav(page, "Evaluate")
        assert_text_only(page, "evaluate")
        cell = text_of(page, ".st-key-cell_samples")
        assert "test sample" in cell and any(
            f"of class {a} predicted as {b}" in cell.replace("*", "") for a in LABELS for b in LABELS
        ), cell
        assert page.locator(".st-key-eval_run input").input_value().startswith(RUN_NAME)
        assert "True class: " in text_of(page, '[data-testid="stMain"]')  # Try it, with a test sample's label
        shot(page, "user-text-evaluate")

        nav(page, "Runs")
        assert_text_only(page, "runs")
        assert page.locator(".st-key-rename_run input").input_value() == RUN_NAME
        shot(page, "user-text-runs")
    finally:
        context.close()


@pytest.mark.timeout(120)
def test_a_share_link_with_a_hostile_data_name_shows_it_as_text_and_a_bad_one_is_quoted_as_text(browser, hostile):
    server, path, _ = hostile
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
    context.add_cookies([{"name": "kf_owner", "value": OWNER, "url": server.url}])  # the upload is this browser's
    try:
        page = context.new_page()
        ref = f"{path.parent.name}/{path.name}"
        spec = {"data": {"source": "csv", "name": DATA_NAME, "path": ref, "target": COLUMNS[-1]}}
        goto(page, f"/train?spec={link(spec)}")
        assert_text_only(page, "train from the link")
        assert DATA_NAME in text_of(page, '[data-testid="stSidebar"]')
        assert DATA_NAME in text_of(page, '[data-testid="stMain"]')  # the experiment line over Train
        nav(page, "Model")
        assert_text_only(page, "model from the link")
        assert f"On {DATA_NAME}:" in text_of(page, '[data-testid="stMain"]')

        goto(page, f"/train?spec={link({'data': {'source': 'builtin', 'name': RUN_NAME}})}")
        assert_text_only(page, "a damaged link")
        assert f"unknown value '{RUN_NAME[:30]}" in text_of(page, '[data-testid="stMain"]')
        shot(page, "user-text-bad-link")
    finally:
        context.close()


@pytest.mark.timeout(120)
def test_the_owner_token_is_kept_in_the_cookie_but_not_left_in_the_page(browser, hostile):
    server, _, _ = hostile
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
    try:
        page = context.new_page()
        for step in ("home", "train"):  # a new browser: every page of its first session sets the cookie
            if step == "home":
                goto(page, "/")
            else:
                nav(page, "Train")
            token = next((c["value"] for c in context.cookies() if c["name"] == "kf_owner"), None)
            assert token and re.fullmatch(r"[0-9a-f]{32}", token), context.cookies()
            assert token not in page.content(), f"{step}: the owner token is in the page's HTML"
            assert token not in page.locator("body").inner_text(), step
    finally:
        context.close()
