"""results.json and report.html: scores with mean and std, the SVG plot, and the report
rendered in headless Chromium with its thumbnails and plots."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from eval.plot import line_plot, nice_max
from eval.run import run
from eval.settings import build

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def test_line_plot_is_valid_svg_with_a_point_per_shot():
    svg = line_plot("CIDEr", {"all": [(0, 10.0, 1.0), (4, 30.0, 2.0), (8, 35.5, 0.0)],
                              "blind": [(0, 1.0, 0.0), (4, 1.0, 0.0), (8, 1.0, 0.0)]})
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}circle")) == 6 and len(root.findall(f"{ns}path")) == 2
    labels = [t.text for t in root.findall(f"{ns}text")]
    assert {"0", "4", "8", "CIDEr", "all", "blind", "shots"} <= set(labels)
    assert nice_max(35.5 + 0) == 50 and nice_max(0.3) == 1 and nice_max(100) == 100


@pytest.fixture
def report_dir(tmp_path, fake_model, classes_dir):
    """A run of three tasks with a fake model: several shots, trials, groups and a blind task."""
    answers = iter(["a big red circle on the left", "dax"] * 1000)
    config = {"model": "fake", "out": str(tmp_path / "out"), "progress": False, "trials": 2,
              "max_queries": 4, "report_examples": 3,
              "tasks": [{"task": "shapes-caption", "shots": [0, 1, 2]},
                        {"task": "shapes-style", "shots": [1, 2], "max_queries": 5},
                        {"task": "miniimagenet", "data": str(classes_dir), "shots": [1, 2], "blind": True}]}
    run(build(config, {}), model=fake_model(lambda prompt: next(answers)))
    return tmp_path / "out"


def test_results_json_has_every_score_with_mean_and_std(report_dir):
    results = json.loads((report_dir / "results.json").read_text())
    assert list(results["tasks"]) == ["shapes-caption", "shapes-style", "miniimagenet-blind"]
    caption = results["tasks"]["shapes-caption"]
    for shots in ("0", "1", "2"):
        entry = caption["scores"][shots]
        values = [t["scores"]["exact_match"] for t in entry["trials"]]
        assert [t["seed"] for t in entry["trials"]] == [0, 1]
        assert entry["mean"]["exact_match"] == pytest.approx(sum(values) / 2)
        assert entry["std"]["exact_match"] == pytest.approx(abs(values[0] - values[1]) / 2)
    assert len(caption["predictions"]) == 3 * 2 * 4
    assert results["settings"]["tasks"][0]["seeds"] == [0, 1]
    style = results["tasks"]["shapes-style"]["scores"]["1"]["mean"]
    assert {"exact_match[plain]", "exact_match[shout]", "exact_match[pirate]"} <= set(style)


def test_report_html_holds_tables_plots_and_thumbnails(report_dir):
    html = (report_dir / "report.html").read_text()
    assert html.count('<table class="scores">') == 3
    assert html.count("<svg") == 3
    # 3 example queries per task, and for the binding task each one's prompt: 2 named
    # demonstrations (1 shot, 2 ways) and the query.
    assert html.count("data:image/jpeg;base64,") == 3 * 3 + 3 * 3
    assert "blind: every image black" in html


def test_report_starts_with_a_summary_of_every_task(report_dir):
    html = (report_dir / "report.html").read_text()
    summary = html.split('<table class="summary">', 1)[1].split("</table>", 1)[0]
    assert html.index('<table class="summary">') < html.index("<section")
    for label, shots in (("shapes-caption", "012"), ("shapes-style", "12"), ("miniimagenet-blind", "12")):
        assert [row.split("</td><td>", 2)[1] for row in summary.split("<tr>")[2:]
                if f'href="#{label}"' in row] == list(shots)
    assert "exact_match" in summary and "accuracy" in summary


def test_score_tables_are_as_wide_as_the_shot_counts(report_dir):
    html = (report_dir / "report.html").read_text()
    style = html.split('<section id="shapes-style">', 1)[1].split('<table class="scores">', 1)[1]
    header = style.split("</tr>", 1)[0]
    assert header.count("<th") == 1 + 2                 # metric, 1-shot, 2-shot
    assert "<th class=\"text\">exact_match[pirate]</th>" in style.split("</table>", 1)[0]


def test_binding_examples_show_the_named_demonstrations(report_dir):
    html = (report_dir / "report.html").read_text()
    binding = html.split('<section id="miniimagenet-blind">', 1)[1]
    examples = binding.split('<table class="examples">', 1)[1].split("</table>", 1)[0]
    assert "the demonstrations define the names" in examples
    first_prompt = examples.split('<div class="prompt">', 1)[1].split("</div>", 1)[0]
    assert first_prompt.count("<img") == 3 and first_prompt.count("This is a") == 3


def test_no_plot_for_a_single_shot_count(tmp_path, fake_model):
    config = {"model": "fake", "out": str(tmp_path / "out"), "progress": False, "trials": 2,
              "max_queries": 3, "tasks": [{"task": "shapes-caption", "shots": [0]}]}
    run(build(config, {}), model=fake_model(lambda prompt: "a big red circle on the left"))
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<svg" not in html and html.count('<table class="scores">') == 1


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                             "(apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    probe = """<script>
    window.addEventListener('load', () => {
      const imgs = [...document.images];
      const svgs = [...document.querySelectorAll('svg.plot')];
      document.body.setAttribute('data-check', JSON.stringify({
        images: imgs.length,
        decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
        plots: svgs.length,
        drawn: svgs.filter(s => s.getBBox().width > 100 && s.querySelectorAll('circle').length > 0).length,
        tables: document.querySelectorAll('table.scores').length}));
    });</script></body>"""
    page = tmp_path / "probe.html"
    page.write_text((report_dir / "report.html").read_text().replace("</body>", probe))
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                            capture_output=True, text=True, timeout=120)
    marker = 'data-check="'
    assert marker in result.stdout, result.stderr[-2000:]
    raw = result.stdout.split(marker, 1)[1].split('"', 1)[0]
    check = json.loads(raw.replace("&quot;", '"'))
    assert check == {"images": 18, "decoded": 18, "plots": 3, "drawn": 3, "tables": 3}
