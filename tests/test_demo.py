"""The main job (`hmrm demo`): every row runs, the table and figures are written, a rerun resumes."""
import json


from hmrm.cli import main
from hmrm.demo import (DEMO_RECIPES, README_BEGIN, README_END, comparisons, demo_checks, demo_rows, describe_recipe,
                       learned_flow, update_readme)


def _diff(target, value, lo, hi):
    return {"a": "A", "b": "B", "target": target, "uf1": {"difference": value, "interval": [lo, hi]}}


def test_checks_measure_every_target_with_its_interval():
    gain, ahead, gap = demo_checks([_diff("gain", 0.10, 0.02, 0.18), _diff("ahead", 0.03, -0.02, 0.08),
                                    _diff("gap", 0.08, 0.0, 0.15)])
    assert gain["met"] and gain["shown"] and "target >= +0.05" in gain["what"] and gain["interval"] == [0.02, 0.18]
    assert ahead["met"] and not ahead["shown"]          # ahead by the estimate, but 0 is inside the interval
    assert not gap["met"] and not gap["shown"]
    gain, gap = demo_checks([_diff("gain", 0.04, 0.01, 0.09), _diff("gap", 0.01, -0.03, 0.04)])
    assert not gain["met"] and gap["met"] and gap["shown"]


def test_rows_compare_the_learned_flow_with_tvl1_and_truth():
    flow, why = learned_flow()
    rows = demo_rows(flow)
    roles = {r.role: r for r in rows}
    assert (roles["main"].model, roles["main"].flow) == ("hmrm", flow)
    assert (roles["baseline"].model, roles["baseline"].flow) == ("ststnet", "tvl1")
    assert (roles["oracle"].model, roles["oracle"].flow) == ("hmrm", "gt")
    # each diagnostic row swaps exactly one part (network or flow) of the main or the oracle row
    for r in rows:
        if r.role == "diagnostic":
            assert any((r.model == o.model) + (r.flow == o.flow) == 1 for o in (roles["main"], roles["oracle"]))
    assert {r.flow for r in rows if r.model == "ststnet"} == {flow, "tvl1", "gt"}
    assert len(demo_rows(flow, diagnostics=False)) == 3
    assert flow == "gru_aofe" and "shipped" in why  # the project ships its weights
    # the paired differences: main - baseline, main - STSTNet on the same flow, oracle - main
    pairs = [(a.role, b.key, target) for a, b, target in comparisons(rows)]
    assert pairs == [("main", "ststnet_tvl1", "gain"), ("main", f"ststnet_{flow}", "ahead"), ("oracle", rows[0].key, "gap")]
    assert [t for _, _, t in comparisons(demo_rows(flow, diagnostics=False))] == ["gain", "gap"]


def test_recipes_describe_every_choice():
    for model, recipe in DEMO_RECIPES.items():
        text = describe_recipe(recipe)
        assert f"{recipe['epochs']} epochs" in text and f"lr {recipe['lr']:g}" in text


def test_readme_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold table\n{README_END}\nrest\n")
    assert update_readme(readme, "| new |")
    text = readme.read_text()
    assert "old table" not in text and "| new |" in text and text.startswith("intro\n") and text.endswith("rest\n")
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    assert not update_readme(plain, "| new |") and plain.read_text() == "no markers\n"


def test_demo_end_to_end_and_resume(tmp_path, tiny_synthme, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{README_BEGIN}\n{README_END}\n")
    args = ["demo", "--root", str(tiny_synthme), "--out", str(tmp_path / "runs"), "--figures", str(tmp_path / "fig"),
            "--readme", str(readme), "--epochs", "2", "--no-diagnostics", "--threads", "1", "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "--workers", "1", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "runs" / "summary.json").read_text())
    assert [r["role"] for r in summary["rows"]] == ["main", "baseline", "oracle"]
    for r in summary["rows"]:
        assert 0.0 <= r["uf1"] <= 1.0 and r["label"] in out
        assert json.loads((tmp_path / "runs" / r["key"] / "metrics.json").read_text())["complete"]
        assert r["interval"]["uf1"][0] <= r["uf1"] <= r["interval"]["uf1"][1]
    assert len(summary["checks"]) == 2 and "target" in summary["checks"][0]["what"]
    assert all(len(d["uf1"]["interval"]) == 2 for d in summary["differences"])
    table = (tmp_path / "fig" / "demo_results.md").read_text()
    assert "STSTNet on TV-L1 flow" in table and "HMRM on ground-truth flow" in table and "OPTIMISTIC" in table
    assert "95% interval" in table and "paired" in table
    first = table
    assert table.strip() in readme.read_text()
    assert (tmp_path / "fig" / "demo_confusion.png").stat().st_size > 0
    assert (tmp_path / "fig" / "demo_training.png").stat().st_size > 0
    # a second call trains nothing: every fold's result.json is left as it was
    results = sorted((tmp_path / "runs").glob("*/folds/*/result.json"))
    before = [p.stat().st_mtime_ns for p in results]
    assert main(args) == 0
    assert [p.stat().st_mtime_ns for p in results] == before
    assert json.loads((tmp_path / "runs" / "summary.json").read_text())["rows"] == summary["rows"]
    assert (tmp_path / "fig" / "demo_results.md").read_text() == first      # the same bytes: nothing timed in it
    # --ablations adds the paper's ablations of the main row, each a run folder, and their table
    assert main(args + ["--ablations"]) == 0
    assert [p.stat().st_mtime_ns for p in results] == before
    from hmrm.model import ABLATIONS

    ran = [a for a in ABLATIONS if a != "full" and (a != "no_motionmix" or DEMO_RECIPES["hmrm"]["motionmix_p"])]
    for name in ran:
        folder = tmp_path / "runs" / "ablations" / learned_flow()[0] / name
        assert json.loads((folder / "config.json").read_text())["config"]["ablation"] == name
    ablations = (tmp_path / "fig" / "demo_ablations.md").read_text()
    assert all(name in ablations for name in ["full", *ran]) and "ΔUF1 vs full" in ablations
    assert "paired" in ablations
    # other epochs on the same folders: refused, nothing trained, and the message says how to start afresh
    capsys.readouterr()
    assert main([a if a != "2" else "3" for a in args]) == 2
    err = capsys.readouterr().err
    assert "epochs: 2 there, 3 here" in err and "another --out" in err
    assert [p.stat().st_mtime_ns for p in results] == before


def test_demo_without_synthme_says_how_to_build_it(tmp_path, capsys):
    assert main(["demo", "--root", str(tmp_path / "nothing")]) == 2
    assert "hmrm synthme --out" in capsys.readouterr().err
