"""The trigger forms of both DAGs in a real browser (Debian's Chromium driven by Playwright) inside
the real Airflow UI: every param of the DAG object, as the DAG file declares it, shows in the
form under its name with its description. Screenshots land in tests/artifacts/; with
ARCHIVIST_UPDATE_SCREENSHOT=1 they also replace docs/trigger-backup.png and
docs/trigger-restore.png, which the README shows."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.plugins.backups_server import ARTIFACTS
from tests.support import ROOT, signed_in_page

pytestmark = pytest.mark.browser

SCREENSHOTS = {"archivist_backup": "trigger-backup.png", "archivist_restore": "trigger-restore.png"}
TALL = {"width": 1400, "height": 2600}  # the restore form whole, without scrolling


def test_every_param_has_a_description(backup_dag, restore_dag, drill_dag):
    for dag in (backup_dag, restore_dag, drill_dag):
        for name, param in dag.params.items():
            assert (param.description or "").strip(), f"{dag.dag_id} param {name!r} has no description"


@pytest.mark.parametrize("dag_id", sorted(SCREENSHOTS))
def test_the_trigger_form_shows_every_param_with_its_description(dag_id, dagbag, browser, airflow_server):
    from playwright.sync_api import expect

    params = dagbag.dags[dag_id].params
    assert params, f"{dag_id} declares no params"
    context, page = signed_in_page(browser, airflow_server, "admin", viewport=TALL)
    try:
        page.goto(f"{airflow_server.url}/dags/{dag_id}")
        page.get_by_role("button", name=re.compile(r"^\s*Trigger")).first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(f"Trigger Dag - {dag_id}")
        form = dialog.get_by_test_id("config-form")
        expect(form).to_contain_text("Run Parameters")
        fields = form.locator('[data-scope="field"][data-part="root"]')
        for name, param in params.items():
            label = page.locator('[data-part="label"]', has_text=re.compile(rf"^\s*{re.escape(name)}\s*\*?\s*$"))
            field = fields.filter(has=label)
            expect(field).to_have_count(1)
            expect(field).to_be_visible()
            expect(field.locator('[data-part="helper-text"]')).to_have_text(param.description)

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / SCREENSHOTS[dag_id]
        dialog.screenshot(path=str(shot))
        if os.environ.get("ARCHIVIST_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, ROOT / "docs" / SCREENSHOTS[dag_id])
    finally:
        context.close()
