"""The Backups page in a real browser (Debian's Chromium driven by Playwright) inside the
real Airflow UI: log in, open "Backups" from the navigation, find the new bundle, go
through the Restore dialog's confirmation and start a dry run, see the run appear, and
follow its link into Airflow's own run page. At 1280 px wide every action is in reach, the
retention rules that keep each bundle are shown and the trend charts draw the bundles' sizes and
durations. The screenshot of the laptop-sized page lands in tests/artifacts/backups-page.png; with
ARCHIVIST_UPDATE_SCREENSHOT=1 it also replaces docs/backups-page.png (otherwise every run would
change a committed file)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from urllib.parse import quote

import pytest
import requests

from archivist.format import bundle
from archivist.format.bundle import BackupKey
from archivist.runner import backup
from archivist.sources.base import DumpOptions
from tests.plugins.backups_server import ARTIFACTS, RESTORE_DAG, ROOT
from tests.support import signed_in_page

pytestmark = pytest.mark.browser


def open_backups(browser, server, user: str):
    """A page logged in through Airflow's login form, on "Backups" from the navigation; and its frame."""
    from playwright.sync_api import expect

    context, page = signed_in_page(browser, server, user)
    page.get_by_role("link", name="Backups", exact=True).click()  # not the archivist_backups asset
    page.wait_for_url(re.compile(r"/plugin/backups"))
    frame = page.frame_locator("iframe[title=Backups]")
    expect(frame.locator("#bundles tbody tr[data-key]").first).to_be_visible()
    return context, page, frame


def bundle_row(frame, key: str):
    from playwright.sync_api import expect

    row = frame.locator(f'#bundles tr[data-key="{key}"]')
    if not row.count():  # more than a page of newer bundles: show them all
        frame.locator("#show-all").click()
    expect(row).to_be_visible()
    return row


def test_admin_restores_a_bundle_as_a_dry_run_from_the_backups_page(browser, airflow_server, demo_bundle):
    from playwright.sync_api import expect

    key, backup_id = demo_bundle["key"], demo_bundle["key"].rsplit("-", 1)[1]
    context, page, frame = open_backups(browser, airflow_server, "admin")
    try:
        expect(frame.locator("#who")).to_have_text("Signed in as admin")
        row = bundle_row(frame, key)
        expect(row.locator("td.num")).to_have_attribute("title", f"{demo_bundle['size']:,} bytes")
        counts = demo_bundle["counts"]
        expect(row.locator("td.job").first).to_contain_text(f"{counts['jobs.postgres']['tables']:,} table")
        expect(row).to_contain_text(f"{counts['jobs.elasticsearch']['documents']:,} doc")
        expect(row).to_contain_text("archivist command")

        # the confirmation names the bundle, the jobs and the mode, and what would be overwritten
        row.get_by_role("button", name="Restore…").click()
        dialog = frame.locator("#restore-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#restore-title")).to_have_text(f"Restore {key}")
        impact = dialog.locator("#restore-impact")
        expect(impact).to_contain_text(key)
        expect(impact).to_contain_text("jobs: postgres, elasticsearch, storage — mode: empty")
        expect(impact).to_contain_text("Nothing is overwritten")
        submit = dialog.locator("#restore-submit")

        dialog.locator('input[name="mode"][value="replace"]').check()
        expect(impact).to_contain_text("mode: replace")
        expect(impact).to_contain_text("This overwrites live data")
        for index in sorted(counts["jobs.elasticsearch"]["indices"])[:2]:
            expect(impact).to_contain_text(index)  # the indices to be recreated, by name
        expect(submit).to_have_text("Overwrite and restore")
        expect(submit).to_be_disabled()  # until the bundle's id is typed
        dialog.locator("#restore-confirm-input").fill(backup_id)
        expect(submit).to_be_enabled()
        dialog.locator("#restore-confirm-input").fill("")

        dialog.locator('input[name="job"][value="storage"]').uncheck()
        expect(impact).to_contain_text("jobs: postgres, elasticsearch — mode: replace")
        dialog.locator("#restore-dry-run").check()
        expect(impact).to_contain_text("Nothing is written")
        expect(submit).to_have_text("Start dry run")
        expect(submit).to_be_enabled()
        submit.click()
        expect(dialog).to_be_hidden()

        alert = frame.locator("#alerts")
        expect(alert).to_contain_text(f"Started the dry-run restore of {key}")
        run_id = alert.locator("a").inner_text()
        airflow_server.started(RESTORE_DAG, run_id)
        run = airflow_server.client("admin").run(RESTORE_DAG, run_id)
        assert run["conf"] == {
            "key": key,
            "jobs": ["postgres", "elasticsearch"],
            "mode": "replace",
            "dry_run": True,
            "allow_unchecked": False,
        }

        new_row = frame.locator(f'#runs-{RESTORE_DAG} tr[data-run="{run_id}"]')
        expect(new_row).to_be_visible()
        expect(new_row).to_contain_text(key)
        expect(new_row).to_contain_text("dry run")
        expect(new_row).to_contain_text("postgres, elasticsearch · replace")

        frame.locator("body").evaluate("() => window.scrollTo(0, 0)")
        page.wait_for_timeout(300)  # the row's highlight settles
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "backups-page-restore-started.png"))

        # the run's link opens Airflow's own run page, in the UI around the iframe
        new_row.locator("a").click()
        page.wait_for_url(re.compile(re.escape(f"/dags/{RESTORE_DAG}/runs/{quote(run_id, safe='')}")))
        expect(page.get_by_text("from the Backups page")).to_be_visible()  # the run's note
    finally:
        context.close()


def test_viewer_sees_the_bundles_but_no_restore(browser, airflow_server, demo_bundle):
    from playwright.sync_api import expect

    context, page, frame = open_backups(browser, airflow_server, "viewer")
    try:
        expect(frame.locator("#who")).to_have_text("Signed in as viewer (read only)")
        row = bundle_row(frame, demo_bundle["key"])
        expect(row.get_by_role("button", name="Restore…")).to_be_disabled()
        expect(row.get_by_role("button", name="Verify")).to_be_disabled()
        expect(frame.locator(f"#runs-{RESTORE_DAG}")).to_be_visible()
        # meta.json opens from the key
        row.locator("a[data-meta]").click()
        expect(frame.locator("#meta-body")).to_contain_text(f'"key": "{demo_bundle["key"]}"')
    finally:
        context.close()


LAPTOP = {"width": 1280, "height": 800}
# the page's colored pixels: a series' line or points, not the gray of axes, grid and text
COLORED_PIXELS = """(canvas) => {
  const {data} = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n += 1;
  }
  return n;
}"""


def _outside(page, frame_locator, selector: str, width: int) -> list[str]:
    """The visible elements matching `selector` whose box reaches outside 0..width of the window."""
    bad = []
    for i in range(frame_locator.locator(selector).count()):
        item = frame_locator.locator(selector).nth(i)
        if not item.is_visible():
            continue
        box = item.bounding_box()
        if box is None or box["x"] < 0 or box["x"] + box["width"] > width:
            bad.append(f"{item.inner_text()!r} at {box}")
    return bad


def _page_bundles(frame) -> dict:
    """What the page's API answers for the bundles, fetched from inside the page's frame."""
    return frame.locator("body").evaluate(
        "async () => (await fetch(new URL('api/bundles', document.baseURI), {credentials: 'same-origin'})).json()"
    )


def test_the_page_fits_a_laptop_charts_the_trends_and_names_the_rules_that_keep_each_bundle(
    browser, airflow_server, demo_bundle, backups_settings
):
    from playwright.sync_api import expect

    from archivist.transport.backup_bucket import BackupStore

    store = BackupStore(backups_settings)
    # the widest row: a bundle made by an Airflow run (its run id shown) of a stack with a namespace
    key = BackupKey.new()
    results = backup._run_parallel(("storage",), key, store.staging(key), DumpOptions())
    backup.upload(
        store,
        key,
        results,
        "production-eu-west-1",
        "archivist_backup",
        f"scheduled__{dt.datetime.now(dt.UTC).isoformat()}",
    )
    # a drill verdict beside the demo bundle, so the picture shows every column the page has
    from archivist.drill import record

    drilled_on = dt.datetime.now(dt.UTC).replace(microsecond=0)
    record.write(store, record.Verdict(demo_bundle["key"], "matched", drilled_on, (), {"tables": 5}))
    requests.get(airflow_server.url + "/", timeout=180)  # the UI's first answer can be slow on a busy machine
    context, page = signed_in_page(browser, airflow_server, "admin", viewport=LAPTOP)
    try:
        page.get_by_role("link", name="Backups", exact=True).click()
        page.wait_for_url(re.compile(r"/plugin/backups"))
        frame = page.frame_locator("iframe[title=Backups]")
        expect(frame.locator("#bundles tbody tr[data-key]").first).to_be_visible()
        row = bundle_row(frame, demo_bundle["key"])

        # every action in reach at 1280 px: inside the window, and the table does not scroll sideways
        buttons = frame.locator("button:visible")
        assert buttons.count() >= 2 * min(10, len(store.list_bundles())) + 1
        assert _outside(page, frame, "button", LAPTOP["width"]) == []
        wrap = frame.locator(".table-wrap").first.evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert wrap[0] <= wrap[1], f"the bundles table scrolls sideways: {wrap}"
        doc = frame.locator("html").evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert doc[0] <= doc[1], f"the page scrolls sideways: {doc}"
        expect(row.get_by_role("button", name="Verify")).to_be_in_viewport()
        expect(row.get_by_role("button", name="Restore…")).to_be_in_viewport()
        expect(row.locator(".tag-drill")).to_have_attribute("data-drill", "matched")

        # the rules that keep each bundle, as the API says and rotation would apply them
        api = _page_bundles(frame)
        assert api["retention"]["policy"] and api["retention"]["error"] is None
        newest = api["bundles"][0]
        assert newest["retention"] and newest["retention"][0].startswith("last ")
        expect(frame.locator(f'#bundles tr[data-key="{newest["key"]}"] td.kept')).to_have_text(
            re.compile(r"\s*".join(map(re.escape, newest["retention"])))
        )
        expect(frame.locator("#summary")).to_contain_text(f"rotation keeps: {api['retention']['policy']}")

        # the charts: the points drawn are the last 30 readable bundles, oldest first, from their meta.json
        for chart in ("#chart-size", "#chart-duration"):
            expect(frame.locator(f"{chart} canvas")).to_have_count(1)
        drawn = frame.locator("body").evaluate("() => window.ArchivistTrends.drawn")
        readable = [b for b in api["bundles"] if not b["error"]][:30]
        assert drawn["keys"] == [b["key"] for b in reversed(readable)]
        assert len(drawn["keys"]) >= 2
        meta = store.read_meta(store.locate(demo_bundle["key"]))
        at = drawn["keys"].index(demo_bundle["key"])
        for job, folder in bundle.JOB_DIRS.items():
            assert drawn["seconds"][job][at] == meta["stats"][folder]["time_seconds"]
            expected = sum(a["size"] for p, a in meta["artifacts"].items() if p.startswith(folder + "/"))
            assert drawn["bytes"][job][at] == expected
        for chart in ("#chart-size", "#chart-duration"):
            colored = frame.locator(f"{chart} canvas").evaluate(COLORED_PIXELS)
            assert colored > 200, f"{chart} draws no series ({colored} colored pixels)"
        frame.locator("#trend-count").select_option("10")
        assert len(frame.locator("body").evaluate("() => window.ArchivistTrends.drawn.keys")) == min(10, len(readable))
        frame.locator("#trend-count").select_option("30")

        # the picture for the README: the table and the charts at 1280 px
        page.set_viewport_size({"width": LAPTOP["width"], "height": 1500})
        page.wait_for_timeout(500)  # the charts follow the new size
        assert _outside(page, frame, "button", LAPTOP["width"]) == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "backups-page.png"
        page.screenshot(path=str(shot))
        if os.environ.get("ARCHIVIST_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, ROOT / "docs" / "backups-page.png")
    finally:
        context.close()
        store.s3.delete_object(Bucket=store.bucket, Key=record.object_key(store, demo_bundle["key"]))


def test_each_bundle_shows_its_last_drill(browser, airflow_server, demo_bundle, backups_settings):
    import datetime as dt

    from playwright.sync_api import expect

    from archivist.drill import record
    from archivist.transport.backup_bucket import BackupStore

    store, key = BackupStore(backups_settings), demo_bundle["key"]
    line = "table public.audit_log: 1199 rows restored, meta.json says 1200"
    record.write(store, record.Verdict(key, "differed", dt.datetime(2026, 12, 6, 3, tzinfo=dt.UTC), (line,)))
    context, page, frame = open_backups(browser, airflow_server, "viewer")
    try:
        tag = bundle_row(frame, key).locator(".tag-drill")
        expect(tag).to_have_text("drill ✗ 2026-12-06")
        expect(tag).to_have_attribute("title", f"differed on 2026-12-06: {line}")
        expect(tag).to_have_attribute("data-drill", "differed")
    finally:
        context.close()
        store.s3.delete_object(Bucket=store.bucket, Key=record.object_key(store, key))
