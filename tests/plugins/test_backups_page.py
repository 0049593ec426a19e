"""The Backups page in a real browser (Debian's Chromium driven by Playwright) inside the
real Airflow UI: log in, open "Backups" from the navigation, find the new bundle, go
through the Restore dialog's confirmation and start a dry run, see the run appear, and
follow its link into Airflow's own run page. The screenshot lands in
tests/artifacts/backups-page.png; with ARCHIVIST_UPDATE_SCREENSHOT=1 it also replaces
docs/backups-page.png (otherwise every run would change a committed file)."""

from __future__ import annotations

import os
import re
import shutil
from urllib.parse import quote

import pytest

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
        shot = ARTIFACTS / "backups-page.png"
        page.screenshot(path=str(shot))
        if os.environ.get("ARCHIVIST_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, ROOT / "docs" / "backups-page.png")

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
