"""`jaxrap tui --serve`: the studio in a real browser, and the one-line refusals of its flags.

The browser test starts the server as a user would (a subprocess on a free loopback port, the
tiny model), opens the page in headless Chromium through selenium and chromedriver (Debian's
``chromium`` and ``chromium-driver``; ``.ci/run`` installs them), types a prompt into the page,
waits until the generated bars reach the page and saves a screenshot. The page draws the
terminal on a canvas, so what it shows is read from the bytes its websocket received (a script
set before the page loads records them): escape sequences removed, the screen's text is there.
``JAXRAP_SCREENSHOT_DIR`` also keeps the screenshot there (docs/images/ has one).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from jaxrap.tui.history import DATA_DIR_ENV, History
from jaxrap.tui.serve import exposure_warning
from jaxrap.tui.widgets.history_view import _CONTROL as CONTROL  # what the history's cards show as U+FFFD

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Flags for a machine without network: no background requests, a fresh profile each run.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,860")
# Set before the page's own script: every binary websocket message, decoded, in window.__received.
RECORD_WEBSOCKET = """
window.__received = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const socket = new NativeWebSocket(url, protocols);
  const decoder = new TextDecoder();
  socket.addEventListener("message", (event) => {
    if (typeof event.data !== "string") window.__received.push(decoder.decode(event.data, {stream: true}));
  });
  return socket;
};
window.WebSocket.prototype = NativeWebSocket.prototype;
"""
ESCAPES = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), DATA_DIR_ENV: str(data_dir)}


def jaxrap_tui(*argv: str, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxrap", "tui", *argv], capture_output=True, text=True,
                          env=environment(data_dir), timeout=60)


def start_server(argv: list[str], data_dir: Path) -> tuple[subprocess.Popen, list[str]]:
    """``jaxrap tui --serve ...`` in its own process group; returns it once it says it serves, and
    the stderr lines up to that one."""
    server = subprocess.Popen([sys.executable, "-m", "jaxrap", "tui", "--serve", *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=environment(data_dir), start_new_session=True)
    assert server.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "serving the studio on" in line:
            return server, lines
    stop_server(server)
    pytest.fail(f"the server did not start: {''.join(lines)}")


def stop_server(server: subprocess.Popen) -> None:
    """Ctrl+C to the server and the studios it started, then a kill if they linger."""
    try:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(5)
    except ProcessLookupError:
        pass


# --- the flags' refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,error",
    [
        (["--host", "my-laptop"], "--host 'my-laptop' is not an IP address: give one of this machine's addresses, e.g. 127.0.0.1"),
        (["--host", "192.0.2.1"], "--host 192.0.2.1 is not an address of this machine; give one of its own, e.g. 127.0.0.1"),
        (["--port", "70000"], "--port 70000 is not a port: give a number in 1-65535, e.g. 8000"),
    ],
)
def test_a_host_that_is_not_an_address_or_a_bad_port_is_refused_in_one_line(tmp_path, argv, error):
    result = jaxrap_tui("--serve", *argv, data_dir=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"jaxrap: error: {error}") and result.stderr.count("\n") == 1


def test_a_port_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = jaxrap_tui("--serve", "--port", str(port), data_dir=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"jaxrap: error: port {port} is in use on 127.0.0.1: another program listens there;"
                             " pick another with --port\n")


def test_host_and_port_without_serve_are_refused(tmp_path):
    result = jaxrap_tui("--port", "8000", data_dir=tmp_path)
    assert (result.returncode, result.stderr) == (2, "jaxrap: error: --host and --port go with --serve (the studio in a browser)\n")


def test_another_host_than_the_loopback_is_served_with_a_warning(tmp_path):
    assert exposure_warning("127.0.0.1", 8000) is None and exposure_warning("::1", 8000) is None
    port = free_port()
    server, lines = start_server(["--host", "0.0.0.0", "--port", str(port)], tmp_path)  # listens only: nothing is sent
    stop_server(server)
    assert lines == [f"jaxrap: warning: {exposure_warning('0.0.0.0', port)}\n",
                     f"jaxrap: serving the studio on http://0.0.0.0:{port} (Ctrl+C stops)\n"]
    assert "anyone who can reach this port can use the model" in lines[0]


# --- in a browser --------------------------------------------------------------------------------


def page_text(driver) -> str:
    return ESCAPES.sub("", "".join(driver.execute_script("return window.__received || []")))


def wait_for(driver, text: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        shown = page_text(driver)
        if text in shown:
            return shown
        time.sleep(0.25)
    pytest.fail(f"{text!r} never reached the page; it shows: {page_text(driver)[-2000:]!r}")


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="no Chromium: apt-get install chromium chromium-driver (.ci/run does)")
def test_the_studio_in_a_browser_generates_bars_from_a_typed_prompt(tiny_lyrics_model_dir, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    data_dir = tmp_path / "data"
    port = free_port()
    server, lines = start_server(["--model", str(tiny_lyrics_model_dir), "--port", str(port)], data_dir)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        assert not any("warning" in line for line in lines)  # the loopback: nothing to warn about
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_WEBSOCKET})
        driver.get(f"http://127.0.0.1:{port}/")
        wait_for(driver, "Type the first bars", 60)  # the studio is drawn, its prompt box focused
        driver.find_element(By.CSS_SELECTOR, ".textual-terminal").click()
        ActionChains(driver).send_keys("Le soir tombe").send_keys(Keys.ENTER).perform()
        shown = wait_for(driver, " generated", 180)  # "ready: 5 bars generated", once the model has written them
        time.sleep(1)  # the page draws what it received
        screenshot = tmp_path / "studio-in-browser.png"
        assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
        if os.environ.get("JAXRAP_SCREENSHOT_DIR"):
            shutil.copy(screenshot, Path(os.environ["JAXRAP_SCREENSHOT_DIR"]) / screenshot.name)
    finally:
        driver.quit()
        stop_server(server)
    os.environ[DATA_DIR_ENV] = str(data_dir)  # read the served studio's history
    try:
        (entry,) = History.for_model(str(tiny_lyrics_model_dir)).load()
    finally:
        del os.environ[DATA_DIR_ENV]
    assert entry.prompt == "Le soir tombe" and entry.output.strip()
    bars = [line for line in entry.output.split("\n") if line.strip()]
    assert re.search(rf"ready: {len(bars)} bars? generated", shown)
    # The lyrics as the card draws them (control characters as U+FFFD; a tab is spaces there):
    # the start of their first lines, the prompt's with the model's first words, is in the page.
    lyrics = [line for line in CONTROL.sub("\ufffd", entry.prompt + entry.output).split("\n") if line.strip()]
    for line in lyrics[:2]:
        assert line[:16].split("\t")[0].rstrip() in shown


def test_each_tab_runs_this_python_on_the_same_model_and_verse(tmp_path, monkeypatch):
    from jaxrap.cli import main
    from jaxrap.tui import serve

    served: list[tuple[str, str, int]] = []
    monkeypatch.setattr(serve, "serve", lambda command, host, port: served.append((command, host, port)))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    port = free_port()
    assert main(["tui", "--serve", "--model", "runs/x", "--write", "couplet.txt", "--port", str(port)]) == 0
    ((command, host, served_port),) = served
    assert shlex.split(command) == [sys.executable, "-m", "jaxrap", "tui", "--model", "runs/x", "--write", str(tmp_path / "couplet.txt")]
    assert (host, served_port) == ("127.0.0.1", port)


def test_python_tui_py_refuses_in_one_line_too(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "tui.py"), "--serve", "--host", "nope"], capture_output=True, text=True,
                            env=environment(tmp_path), timeout=60)
    assert (result.returncode, result.stderr.count("\n")) == (2, 1) and result.stderr.startswith("jaxrap: error: --host 'nope'")
