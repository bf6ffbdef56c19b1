"""`talkface serve` in a real browser: headless Chromium opens the page, uploads a photo and a
speech file, presses Generate and waits until the page's video element plays the result.

Chromium and its driver come from the system packages (`apt-get install chromium
chromium-driver`; .ci/run installs them). Without them the test skips, except in CI (CI=true),
where it fails. The screenshot is saved under $TALKFACE_SCREENSHOTS (default: the test's tmp_path).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.helpers.serve import running_server
from tests.helpers.untrained import untrained_inputs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _browser_or_skip() -> None:
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", DRIVER)) if path is None]
    reason = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    if missing and os.environ.get("CI") == "true":
        pytest.fail(reason + "; CI must have them (.ci/run installs them)")
    if missing:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(browser, server, inputs): headless Chromium and a server with the small test models."""
    _browser_or_skip()
    webdriver = pytest.importorskip("selenium.webdriver", reason="the dev extra has selenium")
    folder = tmp_path_factory.mktemp("serve_browser")
    files = untrained_inputs(folder / "inputs")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1100,1500",
        "--use-fake-ui-for-media-stream",  # microphone and camera: Chromium's own test devices
        "--use-fake-device-for-media-stream",
    ):
        options.add_argument(argument)
    with running_server(files, folder / "server.log") as server:
        browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
        try:
            yield browser, server, files
        finally:
            browser.quit()


@pytest.mark.slow
def test_the_page_makes_a_video_that_plays(page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, server, files = page
    browser.get(server.url)
    assert browser.title == "talkface"
    browser.find_element(By.ID, "image").send_keys(str(files["image"]))
    browser.find_element(By.ID, "audio").send_keys(str(files["audio"]))
    browser.find_element(By.ID, "generate").click()
    statuses = set()

    def playing(driver) -> bool:
        error = driver.find_element(By.ID, "error").text
        assert not error, f"the page shows an error: {error}"
        statuses.add(driver.find_element(By.ID, "status").text.split(":")[0])
        return driver.execute_script(
            "const v = document.getElementById('video');"
            "return v.currentSrc !== '' && !v.paused && v.currentTime > 0.3 && v.readyState >= 2;"
        )

    WebDriverWait(browser, 180, poll_frequency=0.2).until(playing)
    video = browser.execute_script(
        "const v = document.getElementById('video');"
        "return {duration: v.duration, width: v.videoWidth, height: v.videoHeight};"
    )
    assert abs(video["duration"] - 2.0) < 0.1 and video["width"] == 200 and video["height"] == 200, video
    assert browser.find_element(By.ID, "download").get_attribute("href").startswith("blob:")
    assert "Generating" in statuses, statuses  # the progress bar was fed by the generator
    screenshots = Path(os.environ.get("TALKFACE_SCREENSHOTS", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    time.sleep(0.5)
    browser.save_screenshot(str(screenshots / "serve_page.png"))
    assert (screenshots / "serve_page.png").stat().st_size > 10_000
    print(f"screenshot: {screenshots / 'serve_page.png'}; statuses seen: {sorted(statuses)}")


@pytest.mark.slow
def test_the_page_shows_a_wrong_file_as_one_line_and_offers_the_example(page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, server, files = page
    browser.get(server.url)
    notes = tmp_path / "notes.png"
    notes.write_text("not a photo\n")
    browser.find_element(By.ID, "image").send_keys(str(notes))
    browser.find_element(By.ID, "audio").send_keys(str(files["audio"]))
    browser.find_element(By.ID, "generate").click()
    wait = WebDriverWait(browser, 60, poll_frequency=0.2)
    wait.until(lambda driver: driver.find_element(By.ID, "error").text)
    error = browser.find_element(By.ID, "error").text
    assert error.startswith("notes.png: not a readable image") and "\n" not in error, error

    browser.find_element(By.ID, "example-button").click()
    wait.until(lambda driver: "example is ready" in driver.find_element(By.ID, "status").text)
    assert browser.find_element(By.ID, "image-name").text.startswith("face.png")
    assert browser.find_element(By.ID, "audio-name").text.startswith("speech.wav")
    assert browser.find_element(By.ID, "error").text == ""


@pytest.mark.slow
def test_the_page_records_speech_and_takes_a_photo(page):
    """Chromium's fake microphone (a beep) and camera (a moving pattern, no face): the recording
    makes a video with the uploaded photo, and the snapshot is refused with the no-face line."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, server, files = page
    browser.get(server.url)
    wait = WebDriverWait(browser, 120, poll_frequency=0.2)
    browser.find_element(By.ID, "record-button").click()
    wait.until(lambda driver: driver.find_element(By.ID, "record-button").text == "Stop recording")
    time.sleep(2.0)
    browser.find_element(By.ID, "record-button").click()
    wait.until(lambda driver: driver.find_element(By.ID, "audio-name").text.startswith("recording."))
    browser.find_element(By.ID, "image").send_keys(str(files["image"]))
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda driver: driver.find_element(By.ID, "status").text.startswith("Done"))
    assert browser.find_element(By.ID, "error").text == ""

    browser.find_element(By.ID, "camera-button").click()
    wait.until(lambda driver: driver.execute_script("return document.getElementById('camera').videoWidth > 0"))
    browser.find_element(By.ID, "camera-button").click()
    wait.until(lambda driver: driver.find_element(By.ID, "image-name").text.startswith("camera.png"))
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda driver: driver.find_element(By.ID, "error").text)
    assert browser.find_element(By.ID, "error").text.startswith("no face found in camera.png")
