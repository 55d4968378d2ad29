"""The lineage site and the feature report, opened in headless Chromium as a person would.

Skips itself where no Chromium-family browser is installed (`.ci/run` installs Debian's
`chromium` when apt is usable). Screenshots are kept under target/ for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from python_jobs import cli, config, dbt
from python_jobs.tests.browser import Page, find_browser

BROWSER = find_browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no chromium or google-chrome on PATH (apt-get install chromium)"
)
SCREENSHOTS = config.REPO_ROOT / "target"

_LINEAGE_NODES = """(() => {
  const graph = angular.element(document.body).injector().get('graph');
  const nodes = graph.graph.elements.filter(e => e.data && e.data.resource_type && !e.data.source);
  return nodes.length && document.querySelectorAll('canvas').length
    ? nodes.map(e => ({id: e.data.id, type: e.data.resource_type, display: e.data.display}))
    : null;
})()"""

_IMAGES = """Array.from(document.images).map(img => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  let distinct = 0;
  if (img.complete && img.naturalWidth) {
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set();
    for (let i = 0; i < pixels.length && seen.size < 1000; i += 4 * 97) {
      seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
    }
    distinct = seen.size;
  }
  return {src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth,
          height: img.naturalHeight, distinct: distinct};
})"""


def _not_blank(path: Path, box: tuple[int, int, int, int] | None = None) -> float:
    image = Image.open(path).convert("L")
    pixels = np.asarray(image.crop(box) if box else image, dtype=float)
    return float(pixels.std())


@pytest.fixture(scope="module")
def docs_site(demo_schema: str) -> Path:
    """`make docs` (dbt docs generate --static) on the built schema."""
    previous = os.environ.get("DBT_SCHEMA")
    os.environ["DBT_SCHEMA"] = demo_schema
    try:
        dbt.run(["docs", "generate", "--static"], quiet=True)
    finally:
        if previous is None:
            os.environ.pop("DBT_SCHEMA", None)
        else:
            os.environ["DBT_SCHEMA"] = previous
    target = Path(os.environ.get("DBT_TARGET_PATH", config.REPO_ROOT / "target"))
    return target / "static_index.html"


def test_lineage_graph_of_features_hist_shows_the_python_job(docs_site: Path):
    # g_v=1 opens the graph; g_i selects features_hist with all its parents and children.
    graph = "#!/model/model.loto_features.features_hist?g_v=1&g_i=%2Bfeatures_hist%2B"
    url = f"{docs_site.resolve().as_uri()}{graph}"
    with Page(BROWSER) as page:
        page.goto(url)
        nodes = page.wait_for(_LINEAGE_NODES, timeout=60)
        page.wait_for("new Promise(done => setTimeout(() => done(true), 1500))")  # the layout settles
        shot = page.screenshot(SCREENSHOTS / "lineage_features_hist.png")
    shown = {node["id"]: node for node in nodes if node["display"] != "none"}
    assert "model.loto_features.features_hist" in shown
    assert "model.loto_features.stg_lottery__draws" in shown
    # The Python job is in the lineage: its tables as sources (or the job as an exposure).
    job_nodes = [
        node_id
        for node_id, node in shown.items()
        if node_id.startswith("source.loto_features.python_jobs.") or node["type"] == "exposure"
    ]
    assert job_nodes, sorted(shown)
    # The graph was drawn: the screenshot's graph area is not one flat colour.
    assert _not_blank(shot, (40, 100, 1340, 760)) > 5


def test_report_images_load_and_are_not_blank(demo_schema: str, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("DBT_SCHEMA", demo_schema)
    assert cli.main(["report", "--loto", "loto6", "--out-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    with Page(BROWSER) as page:
        page.goto((tmp_path / "loto6.html").resolve().as_uri())
        images = page.wait_for(
            f"(() => {{ const all = {_IMAGES}; return all.every(i => i.complete) && all; }})()"
        )
        title = page.evaluate("document.title")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight * 0.45)")
        page.screenshot(SCREENSHOTS / "report_loto6.png")
    assert title == "loto6 feature report"
    assert len(images) == 10
    for image in images:
        assert image["width"] > 500 and image["height"] > 200, image
        assert image["distinct"] > 20, image  # drawn, not one background colour
