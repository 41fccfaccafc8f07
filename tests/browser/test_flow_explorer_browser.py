"""The flow explorer of chapter 02 in a real browser.

JupyterLab is started on localhost from this environment, chapter 02 (a copy, so the repository's
notebook is never saved over) is opened in headless Chromium (Debian's `chromium`, driven by
Playwright through that system browser: nothing is downloaded), the cells the explorer needs are run,
the explorer's "method" control is changed, and the test asserts that the drawn flow image changes and
that no error appears. A screenshot is saved to test-artifacts/flow_explorer.png.

Needs Chromium and Playwright; without them it is skipped with the command that runs it (`.ci/run`
installs both and runs it after `make test`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHAPTER = REPO / "notebooks" / "02_optical_flow.ipynb"
ARTIFACTS = REPO / "test-artifacts"
HOW = ("to run it: `sudo apt-get install chromium` and `.venv/bin/pip install -e '.[browser]'`, then "
       "`.venv/bin/pytest tests/browser` (.ci/run does both after make test)")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _chromium() -> str | None:
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path):
    """A JupyterLab server on localhost serving a folder with a copy of chapter 02; yields (url, token)."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(CHAPTER, root / CHAPTER.name)
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the page (no virtual scrolling), so cells can be found by their text
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), "hmrm-browser-test"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the inline backend, as for a student
    env["PYTHONPATH"] = str(REPO)
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         "--LabApp.news_url="] + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _run_cell(page, text: str, timeout_ms: int = 300_000) -> None:
    """Click into the first cell whose source contains ``text``, run it (Shift+Enter), wait until it ran.

    A freshly opened notebook can miss the first key press (the editor or the kernel connection not ready
    yet): when the prompt shows neither a number nor ``*`` after a few seconds, the cell is run again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    cell = page.locator(".jp-Notebook .jp-CodeCell").filter(has_text=text).first
    prompt = cell.locator(".jp-InputArea-prompt")
    started = "(el) => /\\[(\\d+|\\*)\\]/.test(el.textContent)"
    for attempt in range(6):
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(started, arg=prompt.element_handle(), timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 5:
                raise
    page.wait_for_function("(el) => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=timeout_ms)


def _errors(page) -> list[str]:
    texts = page.locator(".jp-OutputArea-output").all_inner_texts()
    return [t[:300] for t in texts if "Traceback" in t or re.search(r"\b\w+Error\b", t)]


def test_flow_explorer_redraws_when_a_control_moves(lab):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium on this machine; " + HOW)
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed; " + HOW)
    url, token = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page_errors: list[str] = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        try:
            page.goto(f"{url}/lab/tree/{CHAPTER.name}?token={token}", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-Toolbar-kernelStatus", timeout=120_000)
            _run_cell(page, "# Parameters")
            _run_cell(page, "samples = tiny_synthme")
            _run_cell(page, "flow_explorer(")
            assert not _errors(page), _errors(page)  # the explorer cell raised
            explorer = page.locator(".jp-Notebook .jp-CodeCell").filter(has_text="flow_explorer(").first
            image = explorer.locator(".widget-output img, .jupyter-widgets-output-area img").first
            image.wait_for(timeout=300_000)
            before = image.get_attribute("src")
            method = explorer.locator(".widget-dropdown select").nth(1)  # sample, then method
            options = method.locator("option").all_inner_texts()
            assert len(options) > 1, options
            method.select_option(label=options[1])
            page.wait_for_function(
                "([el, old]) => el.isConnected ? el.getAttribute('src') !== old : true",
                arg=[image.element_handle(), before], timeout=300_000)
            image = explorer.locator(".widget-output img, .jupyter-widgets-output-area img").first
            image.wait_for(timeout=60_000)
            after = image.get_attribute("src")
            page.screenshot(path=str(ARTIFACTS / "flow_explorer.png"), full_page=False)
            explorer.screenshot(path=str(ARTIFACTS / "flow_explorer_cell.png"))
            assert before and after and after != before, "the explorer's image did not change with its control"
            assert not _errors(page), _errors(page)
            assert not page_errors, page_errors
        finally:
            browser.close()
