"""report.html in a real browser (headless Chromium): what the page shows after its scripts ran:
leaderboard order, sorting by link and by click, figures decoded, every run's status, warnings
and rerun command, paging and filtering of the run table, and escaping of recorded text."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harness import results
from harness.report import cli as report
from harness.report import html, load
from tests.synthetic_results import GRID_TIMES, write_run, write_study_grid

TIMES = GRID_TIMES
HOSTILE = "ValueError: <img src=x onerror=\"document.title='escaped badly'\"> & more"
PER_PAGE = 40  # the run table's page in these tests: fewer than the runs, so that it pages
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless browser: install Debian's chromium "
    "(apt-get install --no-install-recommends chromium); .ci/run does",
)


class Dom(HTMLParser):
    """The parts of a dumped DOM the tests read: table rows (by table id, with the row's class
    and its cells' text), images' attributes, and the body's attributes."""

    def __init__(self, text: str):
        super().__init__()
        self.rows: dict[str, list[tuple[str, list[str]]]] = {}
        self.images: list[dict[str, str]] = []
        self.captions: list[str] = []
        self.body: dict[str, str] = {}
        self.texts: dict[str, str] = {}  # element id -> its text
        self._tables: list[str] = []
        self._row: tuple[str, list[str]] | None = None
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self._ids: list[tuple[str, str, list[str]]] = []  # open elements with an id
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if "id" in attrs and tag not in ("img", "input", "br"):
            self._ids.append((tag, attrs["id"], []))
        if tag == "table":
            self._tables.append(attrs.get("id", ""))
        elif tag == "tr":
            self._row = (attrs.get("class", ""), [])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "figcaption":
            self._caption = []
        elif tag == "body":
            self.body = attrs

    def handle_endtag(self, tag):
        if self._ids and self._ids[-1][0] == tag:
            _, name, parts = self._ids.pop()
            self.texts[name] = "".join(parts)
        if tag == "table":
            self._tables.pop()
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self._tables[-1], []).append(self._row)
            self._row = None
        elif tag == "figcaption" and self._caption is not None:
            self.captions.append("".join(self._caption).strip())
            self._caption = None

    def handle_data(self, data):
        for part in (self._cell, self._caption, *(p for _, _, p in self._ids)):
            if part is not None:
                part.append(data)

    def table(self, table_id: str, kind: str = "") -> list[list[str]]:
        """Body rows (not the header) of a table, of the given class when one is given."""
        rows = self.rows.get(table_id, [])[1:]
        return [cells for cls, cells in rows if not kind or cls == kind]


def browse(url: str, tmp_path: Path, *flags: str) -> Dom:
    done = subprocess.run(
        [
            *(CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"),
            *(f"--user-data-dir={tmp_path / 'chromium-profile'}", *flags, "--dump-dom", url),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return Dom(done.stdout)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """A small results folder (90 runs of a study grid, a failed run whose error is markup, a
    disturbed run, a record that disagrees with its evaluations) and its report with figures;
    (report folder, leaderboard.csv, the runs as loaded)."""
    root = tmp_path_factory.mktemp("html") / "results"
    write_study_grid(root, TIMES)
    failed = write_run(root, "adamw", "friedman", 3, 0, None, status="failed")
    record = json.loads((failed / results.RECORD_FILE).read_text())
    (failed / results.RECORD_FILE).write_text(json.dumps({**record, "error": HOSTILE}))
    write_run(root, "adamw", "friedman", 4, 0, 5.0, disturbed=True)
    odd = write_run(root, "sgd_nesterov", "friedman", 4, 0, 120.0)
    results.write_record(odd, results.load_record(odd).replace(time_to_target=99.0))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(html, "RUNS_PER_PAGE", PER_PAGE)
        assert report.main([str(root), "--resamples", "50"]) == 0
    loaded = load.load(root, use_cache=False)
    return root / "report", pd.read_csv(root / "report" / "leaderboard.csv"), loaded.runs


def _time(text: str) -> float:
    return math.inf if text == "∞" else float(text) if text else math.nan


@pytest.mark.slow
@needs_chromium
def test_the_page_shows_leaderboard_figures_and_runs(made, tmp_path):
    out, board, runs = made
    dom = browse((out / html.PAGE).as_uri(), tmp_path)
    assert dom.body.get("data-loaded") == "yes", "the page's script did not run to the end"

    shown = dom.table("leaderboard-1-table")
    assert [row[1] for row in shown] == list(board.sort_values("rank")["submission"])
    assert [row[0] for row in shown] == ["1", "2", "3"]
    assert [row[2].split()[0] for row in shown] == [f"{s:.3f}" for s in board["score"]]
    assert all(row[-2].startswith("∞") for row in shown if row[1] == "sgd_nesterov")

    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 1 and len(dom.images) == len(pngs), "one image per figure, no other"
    assert all(int(img.get("data-natural-width", 0)) > 0 for img in dom.images), dom.images
    assert all(img["src"].startswith("data:image/png;base64,") for img in dom.images)
    assert len(set(dom.captions)) == len(pngs) and all(len(c) > 20 for c in dom.captions)
    for name in ("generated", "packages", "Synthetic CPU x4 threads", "not recorded"):
        assert name in dom.texts["provenance"]
    assert "exact integral of the performance profile" in dom.texts["top"], "the scoring rules"

    drawn = dom.table("runs-table", "run")
    assert len(drawn) == PER_PAGE and dom.texts["runs-count"] == f"runs 1–{PER_PAGE} of {len(runs)}"
    by_id = runs.set_index("run_id")
    below = [cells[0] for cls, cells in dom.rows["runs-table"][1:] if cls == "below"]
    assert len(below) == PER_PAGE, "each run has its line of warnings and rerun command"
    for cells, extra in zip(drawn, below, strict=True):
        run = by_id.loc[cells[0]]
        assert cells[6] == run["status"] and f"rerun: {run['command']}" in extra
    assert any(c[6] == "failed" for c in drawn), "the failed run is on the first page"
    failed = next(extra for c, extra in zip(drawn, below, strict=True) if c[6] == "failed")
    assert HOSTILE in failed, "the error is shown as text, not markup"
    disturbed = next(c for c in drawn if c[0].endswith("adamw/friedman/study_4/trial_0"))
    assert disturbed[-1] == "yes" and disturbed[-2] == "yes", "disturbed, and a best trial"

    warnings = dom.texts["warnings"]
    assert "record.json says time_to_target 99 s" in warnings and "1 disturbed run(s)" in warnings


@pytest.mark.slow
@needs_chromium
def test_a_link_sorts_the_tables(made, tmp_path):
    """#sort=TABLE:COLUMN[:desc]: numbers numerically, ∞ and blanks last either way."""
    out, _, runs = made
    url = (out / html.PAGE).as_uri()
    dom = browse(url + "#sort=leaderboard-1:time:digits:desc&sort=runs:time", tmp_path)
    # digits: adamw 11, lion 9, sgd_nesterov inf.
    assert [row[1] for row in dom.table("leaderboard-1-table")] == ["adamw", "lion", "sgd_nesterov"]
    finite = sorted(t for t in runs["time_to_target"] if math.isfinite(t))
    misses = [math.inf] * int(np.isinf(runs["time_to_target"]).sum())
    assert PER_PAGE < len(finite) < 2 * PER_PAGE < len(runs), "page 2 holds both kinds"
    shown = [_time(c[7]) for c in dom.table("runs-table", "run")]
    assert shown == pytest.approx((finite + misses)[:PER_PAGE], rel=5e-3)  # as rounded

    dom = browse(url + "#sort=leaderboard-1:time:digits&sort=runs:time:desc&page=1", tmp_path)
    assert [row[1] for row in dom.table("leaderboard-1-table")] == ["lion", "adamw", "sgd_nesterov"]
    shown = [_time(c[7]) for c in dom.table("runs-table", "run")]
    expected = finite[::-1] + misses  # ∞ last in either direction
    assert shown == pytest.approx(expected[PER_PAGE : 2 * PER_PAGE], rel=5e-3)


CLICKS = """<!DOCTYPE html><body><iframe id=f src="{page}"></iframe><script>
const frame = document.getElementById("f");
frame.addEventListener("load", () => {{
  const d = frame.contentDocument, seen = {{}};
  const names = () => Array.from(d.querySelectorAll("#leaderboard-1-table tbody tr"))
    .map(tr => tr.cells[1].textContent);
  const runs = () => Array.from(d.querySelectorAll("#runs-table tr.run"))
    .map(tr => tr.cells[6].textContent);
  const score = d.querySelector("#leaderboard-1-table th[data-key=score] button");
  score.click(); seen.scoreUp = names();
  score.click(); seen.scoreDown = names();
  d.querySelector("#runs-table th[data-key=status] button").click(); seen.statusUp = runs();
  d.getElementById("runs-next").click(); seen.next = d.getElementById("runs-count").textContent;
  const filter = d.getElementById("runs-filter");
  filter.value = "failed"; filter.dispatchEvent(new Event("input")); seen.failed = runs();
  document.body.dataset.seen = JSON.stringify(seen);
}});
</script></body>"""


@pytest.mark.slow
@needs_chromium
def test_clicks_sort_page_and_filter(made, tmp_path):
    out, board, runs = made
    page = tmp_path / "clicks.html"
    page.write_text(CLICKS.format(page=(out / html.PAGE).as_uri()))
    dom = browse(page.as_uri(), tmp_path, "--allow-file-access-from-files")
    seen = json.loads(dom.body["data-seen"])
    ranked = list(board.sort_values("rank")["submission"])
    assert seen["scoreUp"] == ranked[::-1] and seen["scoreDown"] == ranked
    statuses = sorted(runs["status"])
    assert seen["statusUp"] == statuses[:PER_PAGE]
    assert seen["next"] == f"runs {PER_PAGE + 1}–{2 * PER_PAGE} of {len(runs)}"
    assert seen["failed"] == ["failed"], "the filter finds the one failed run"


def test_recorded_text_is_escaped_and_the_page_stands_alone(made):
    out, _, _ = made
    text = (out / html.PAGE).read_text()
    assert HOSTILE not in text and "<img src=x" not in text, "recorded text is never markup"
    assert json.dumps(HOSTILE).replace("<", "\\u003c") in text
    assert "://" not in text, "nothing is fetched: no URL of any scheme in the page"
    assert list(out.parent.rglob(html.PAGE)) == [out / html.PAGE], "nothing in the run folders"


def test_no_html_writes_no_page(tmp_path):
    write_run(tmp_path / "results", "adamw", "digits", 0, 0, 10.0)
    assert report.main([str(tmp_path / "results"), "--no-figures", "--no-html"]) == 0
    assert not (tmp_path / "results" / "report" / html.PAGE).exists()
    assert (tmp_path / "results" / "report" / "leaderboard.md").exists()


def test_figures_go_to_their_leaderboard_and_a_caption_file_wins(tmp_path):
    groups = [
        SimpleNamespace(context=SimpleNamespace(number=n, name=name))
        for n, name in ((1, "external"), (2, "self"))
    ]
    names = ["performance_profile_external", "performance_profile_self", "curves_time_self"]
    names.append("overview")
    paths = [tmp_path / f"{name}{suffix}" for name in names for suffix in (".pdf", ".png")]
    (tmp_path / "curves_time_self.caption.txt").write_text("Curves <of> leaderboard 2.")
    found = html.figures_by_leaderboard(paths, groups)
    assert {k: [f.name for f in v] for k, v in found.items()} == {
        1: ["performance_profile"],
        2: ["performance_profile", "curves_time"],
        None: ["overview"],
    }
    assert all(f.image.suffix == ".png" for v in found.values() for f in v)
    curves = found[2][1]
    assert html.figure_caption(curves, None) == "Curves <of> leaderboard 2."
    assert html.figure_caption(found[1][0], None) == html.FIGURE_TEXT["performance_profile"]
    one = html.figures_by_leaderboard(paths[:2], groups[:1])
    assert list(one) == [1] and one[1][0].name == "performance_profile_external"
