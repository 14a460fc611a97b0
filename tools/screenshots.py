"""Screenshots of the app's three views for the README, made in headless Chromium.

    python tools/screenshots.py [--out docs/screenshots]

Opens the coffee demo (the built-in baseline model), clicks the coffee, and saves overlay.png, cutout.png
and erase.png; then Remove background with a soft edge of 6 px (subject.png), segment everything on the
shapes scene (everything.png), the cat on a phone (390 x 844, touch; phone.png), and a brushed edge on the
12-megapixel demo at 400 % (zoom.png: the photo's own pixels): what a person sees, made by the same page the
tests drive.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from samtab_tools.browser import EVENT_RECORDER, SiteServer, launch_args, recorded_events

ROOT = Path(__file__).resolve().parent.parent
CLICKS = [(290, 160, "left")]  # the coffee, in the photo's pixels (600×400)


def shoot(page, path: Path) -> None:
    page.screenshot(path=str(path))
    print(f"screenshots: {path}")


def zoomed(page, path: Path) -> None:
    """The 12 MP demo: a click on the red disc, a brush stroke that adds a bump to its edge (at the whole
    photo's zoom), then 400 % on the bump's edge."""
    import json

    from samtab_tools.browser import zoom_page

    page.click("#gallery button[data-slug=shapes-12mp]")
    page.wait_for_function("window.__samtab_events.filter(e => e.name == 'opened').length > 2", timeout=60_000)
    page.wait_for_function("document.body.dataset.state === 'ready'")
    page.click("#view-overlay")
    meta = json.loads((ROOT / "site" / "demos" / "shapes-12mp" / "truth.json").read_text())
    disc = next(o for o in meta["objects"] if o["name"] == "red disc")
    box = page.locator("#canvas").bounding_box()

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + (x + 0.5) * box["width"] / meta["width"], box["y"] + (y + 0.5) * box["height"] / meta[
            "height"
        ]

    masks = len(recorded_events(page, "mask"))
    page.mouse.click(*at(*disc["point"]))
    page.wait_for_function(f"window.__samtab_events.filter(e => e.name == 'mask').length > {masks}")
    x0, y0, w, h = disc["box"]
    edge = (x0 + w, y0 + h * 0.35)
    page.keyboard.press("b")
    page.mouse.move(*at(edge[0] - 80, edge[1] - 150))
    page.mouse.down()
    page.mouse.move(*at(edge[0] + 40, edge[1]), steps=12)
    page.mouse.move(*at(edge[0] - 80, edge[1] + 150), steps=12)
    page.mouse.up()
    page.keyboard.press("b")
    page.wait_for_function("document.body.dataset.state === 'ready'")
    page.wait_for_timeout(600)
    tip = at(edge[0] + 30, edge[1])
    zoom_page(page, 400, meta["width"], around=tip)
    # Then a middle-button drag brings the bump's tip to the middle of what shows.
    area = page.locator("#image-area").bounding_box()
    middle = (area["x"] + area["width"] / 2, (area["y"] + min(area["y"] + area["height"], 760)) / 2)
    page.mouse.move(*tip)
    page.mouse.down(button="middle")
    page.mouse.move(*middle, steps=5)
    page.mouse.up(button="middle")
    page.wait_for_function("document.getElementById('image-area').classList.contains('detailed')")
    page.wait_for_timeout(600)
    shoot(page, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    recorder = EVENT_RECORDER.replace('"ready", "error"', '"ready", "error", "mask", "opened"')
    server = SiteServer()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**launch_args())
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.add_init_script(recorder)
            page.goto(f"{server.url}?demo=coffee")
            page.wait_for_function("window.__samtab_events.some(e => e.name == 'opened')", timeout=180_000)
            box = page.locator("#canvas").bounding_box()
            for index, (x, y, button) in enumerate(CLICKS):
                page.mouse.click(
                    box["x"] + (x + 0.5) * box["width"] / 600, box["y"] + (y + 0.5) * box["height"] / 400, button=button
                )
                page.wait_for_function(
                    f"window.__samtab_events.filter(e => e.name == 'mask').length > {index}", timeout=60_000
                )
            page.mouse.move(0, 0)
            for view in ("overlay", "cutout", "erase"):
                page.click(f"#view-{view}")
                page.wait_for_timeout(400)
                shoot(page, args.out / f"{view}.png")
            # Remove background, with a soft edge.
            page.click("#view-overlay")
            page.eval_on_selector("#feather", "input => { input.value = 6; input.dispatchEvent(new Event('input')); }")
            masks = len(recorded_events(page, "mask"))
            page.click("#subject")
            page.wait_for_function(f"window.__samtab_events.filter(e => e.name == 'mask').length > {masks}")
            page.wait_for_function("document.body.dataset.state === 'ready'")
            page.wait_for_timeout(400)
            shoot(page, args.out / "subject.png")
            # Segment everything, on the shapes scene.
            page.click("#gallery button[data-slug=shapes]")
            page.wait_for_function("window.__samtab_events.filter(e => e.name == 'opened').length > 1", timeout=60_000)
            page.wait_for_selector("#everything:not([disabled])")
            page.click("#view-overlay")
            page.click("#everything")
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('Segment everything:')", timeout=120_000
            )
            page.wait_for_timeout(400)
            shoot(page, args.out / "everything.png")
            # A brush stroke over the edge of the 12 MP scene's red disc, seen at 400 %.
            zoomed(page, args.out / "zoom.png")
            # A phone: the photo first, a tap.
            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
            ).new_page()
            phone.add_init_script(recorder)
            phone.goto(f"{server.url}?demo=chelsea")
            phone.wait_for_function("window.__samtab_events.some(e => e.name == 'opened')", timeout=180_000)
            box = phone.locator("#canvas").bounding_box()
            phone.touchscreen.tap(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.35)
            phone.wait_for_function("window.__samtab_events.some(e => e.name == 'mask')", timeout=60_000)
            phone.wait_for_timeout(400)
            shoot(phone, args.out / "phone.png")
            errors = recorded_events(page, "error")
            browser.close()
    finally:
        server.stop()
    if errors:
        print(f"screenshots: the page reported errors: {errors}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
