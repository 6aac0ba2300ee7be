"""The HTML leaderboard in headless Chromium: no console errors, the table sorts on a header click, screenshot."""

from __future__ import annotations

from pathlib import Path

from harness.report import write_report
from tests.conftest import CHROMIUM, needs

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic"]

pytestmark = needs("chromium")


def test_page_renders_and_sorts(tmp_path: Path) -> None:
    import playwright.sync_api as playwright
    runs = Path(__file__).parent / "data"
    write_report(tmp_path / "report", runs)
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1200, "height": 900},
        )
        page = browser.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto((tmp_path / "report" / "index.html").as_uri())
        page.wait_for_load_state("load")
        assert page.locator("img").count() == 4
        assert all(page.evaluate(f"document.images[{i}].naturalWidth") > 0 for i in range(4))

        def first_column() -> list[str]:
            return page.locator("#leaderboard tbody tr td:first-child").all_inner_texts()

        def column(index: int) -> list[str]:
            return page.locator(f"#leaderboard tbody tr td:nth-child({index})").all_inner_texts()

        before = first_column()
        page.locator("#leaderboard th", has_text="ARC-Challenge").click()
        ascending = column(3)
        page.locator("#leaderboard th", has_text="ARC-Challenge").click()
        descending = column(3)
        numbers = [float(v.rstrip("*†‡")) for v in descending if v.rstrip("*†‡").replace(".", "").isdigit()]
        assert numbers == sorted(numbers, reverse=True) and len(numbers) >= 5
        assert first_column() != before or ascending != descending
        assert descending[0].startswith("96.3")  # GPT-4 on top
        page.screenshot(path=str(tmp_path / "report" / "screenshot.png"), full_page=True)
        browser.close()
    assert errors == []
    assert (tmp_path / "report" / "screenshot.png").stat().st_size > 20_000
