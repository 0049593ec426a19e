"""The pure parts of the command's output: JSON documents, the replace question's rules, and the
live display's rows drawn from progress counts. No server."""

from __future__ import annotations

import io
import json
import sys

import click
import pytest
from rich.console import Console

from archivist import progress
from archivist.cli import confirm, live
from archivist.cli.output import Output, scrub_document
from archivist.errors import ConfigurationError, JobFailedError


def test_a_json_document_is_scrubbed_of_secrets_but_keeps_its_shape(monkeypatch):
    monkeypatch.setenv("DATABASE_PASSWORD", "pw-Secret-8812")
    doc = {"error": "login as x:pw-Secret-8812 failed", "n": 8812, "ok": True, "list": ["pw-Secret-8812", None]}
    assert scrub_document(doc) == {"error": "login as x:**** failed", "n": 8812, "ok": True, "list": ["****", None]}


def test_a_failure_prints_its_document_with_the_error_and_returns_the_code(capsys):
    error = Output(as_json=True).failed({"key": "k", "ok": False}, JobFailedError("counts differ"))
    assert error.exit_code == 7
    assert json.loads(capsys.readouterr().out) == {"key": "k", "ok": False, "error": "counts differ", "exit_code": 7}


def test_text_json_and_quiet_print_only_their_own(capsys):
    for out, printed in ((Output(), "line\n"), (Output(as_json=True), '{\n  "a": 1\n}\n'), (Output(quiet=True), "")):
        out.say("line")
        out.document({"a": 1})
        assert capsys.readouterr().out == printed


def test_replace_asks_only_on_a_terminal_and_never_for_empty_or_a_dry_run_or_yes(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal
    assert not confirm.needed("empty", False, False)
    assert not confirm.needed("replace", True, False)
    assert not confirm.needed("replace", False, True)
    with pytest.raises(ConfigurationError, match="add --yes") as refused:
        confirm.needed("replace", False, False)
    assert refused.value.exit_code == 2


def test_the_question_lists_each_job_and_no_stops_the_restore(monkeypatch, capsys):
    answers, asked = iter(["n", "y"]), []
    monkeypatch.setattr(click.termui, "visible_prompt_func", lambda prompt: asked.append(prompt) or next(answers))
    ask = confirm.asker("bundle-2026-12-04-abcdefghijk")
    drops = {"postgres": ["schema app of database 'd'"], "storage": ["3 object(s) of bucket 'b', overwritten: a, b, c"]}
    with pytest.raises(confirm.Declined, match="nothing was written"):
        ask(drops)
    ask(drops)  # "y" goes on
    said = capsys.readouterr().err
    assert "  postgres       schema app of database 'd'\n" in said
    assert "  storage        3 object(s) of bucket 'b'" in said
    assert [prompt.strip() for prompt in asked] == ["Drop these and restore? [y/N]:"] * 2
    ask({"postgres": [], "storage": []})  # nothing to drop: nothing asked
    assert "drops nothing the targets hold now" in capsys.readouterr().err


def test_the_display_draws_a_row_per_step_with_its_count_and_total():
    board = progress.Board()
    with progress.watching(board):
        running = progress.Progress("export products", "docs")
        verified = progress.Progress("verify the bundle", total=2048)
    outside = progress.Progress("not watched")
    running.add(150)
    verified.add(2048)
    verified.done()
    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    bars = live._Bars(board, 0, console)
    console.print(bars.get_renderable())
    drawn = console.file.getvalue()
    assert "export products" in drawn and "150 docs" in drawn and "docs/s" in drawn
    assert "verify the bundle" in drawn and "2.0 KiB of 2.0 KiB" in drawn
    assert outside.label not in drawn


def test_nothing_is_drawn_for_json_quiet_or_a_pipe(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert live.wanted(Output())
    assert not live.wanted(Output(as_json=True)) and not live.wanted(Output(quiet=True))
    monkeypatch.setenv("TERM", "dumb")
    assert not live.wanted(Output())
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a pipe
    assert not live.wanted(Output())


def test_the_display_keeps_every_running_step_and_the_latest_finished_ones():
    board = progress.Board()
    with progress.watching(board):
        steps = [progress.Progress(f"step {n:02d}") for n in range(live.ROWS + 3)]
    for step in steps[:-2]:
        step.done()
    bars = live._Bars(board, 0, Console(file=io.StringIO(), width=120))
    bars.get_renderable()
    visible = [task.description for task in bars.tasks if task.visible]
    assert visible == [s.label for s in steps[3:]]  # the 10 finished last, then the 2 running
