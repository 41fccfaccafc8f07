import json
import re
from pathlib import Path

import pytest
import torch

from hmrm.flow.pretrained import load_pretrained, weight_info
from hmrm.flow.train import load_config, train


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _tiny_cfg(name: str = "flow_pretrain"):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    cfg["model"].update(feature_dim=16, hidden=16, context=16, width=8, iters=2)
    cfg["data"]["size"] = 32
    cfg["train"].update(steps=4, batch=2, save_every=2)
    return cfg


def test_train_resumes_and_exports_loadable_weights(tmp_path):
    cfg = _tiny_cfg()
    out = tmp_path / "run"
    res = train(cfg, out, max_minutes=0, progress=False)  # stops after the first step, with a checkpoint
    assert res == {"finished": False, "step": 1}
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 1
    res = train(cfg, out, progress=False)
    assert res["finished"] and res["step"] == 4
    lines = (out / "log.csv").read_text().splitlines()
    assert lines[0] == "step,loss,epe_last,epe_gru,epe_warm_start,seconds" and [l.split(",")[0] for l in lines[1:]] == ["2", "4"]
    info = weight_info("gru_aofe", out)
    assert info["steps"] == 4 and len(info["sha256"]) == 64
    model = load_pretrained("gru_aofe", out)
    assert not model.training and model.config.hidden == 16
    # a different config does not silently continue an old run
    cfg2 = _tiny_cfg()
    cfg2["train"]["lr"] = 5e-4
    with pytest.raises(ValueError, match="another config"):
        train(cfg2, out, progress=False)


def test_weights_are_hash_checked(tmp_path):
    cfg = _tiny_cfg()
    cfg["train"]["steps"] = 1
    train(cfg, tmp_path, progress=False)
    meta = json.loads((tmp_path / "gru_aofe.json").read_text())
    meta["sha256"] = "0" * 64
    (tmp_path / "gru_aofe.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="corrupt or was replaced"):
        load_pretrained("gru_aofe", tmp_path)
    with pytest.raises(FileNotFoundError, match="hmrm flow train"):
        load_pretrained("nothing", tmp_path)


def test_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="configs/flow_pretrain.yaml"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("model: {}\n")
    with pytest.raises(ValueError, match="bad.yaml: data: missing section"):
        load_config(tmp_path / "bad.yaml")
    shipped = (CONFIGS / "flow_pretrain.yaml").read_text()
    for old, new, message in [("lr: 0.001 ", "lr: fast ", "train.lr: must be a number > 0, got 'fast'"),
                              ("iters: 2", "iters: 0", "model.iters: must be an integer >= 1, got 0"),
                              ("size: 96", "size: 100", "data.size: must be a multiple of 16"),
                              ("generator: faces", "generator: chairs", "data.generator: must be one of"),
                              ("attention: cosine", "attention: softmax", "model.attention: must be one of"),
                              ("attention_temperature: 10.0", "attention_temperature: -1.0",
                               "model.attention_temperature: must be a number > 0"),
                              ("bump_max_px: 4.0", "bump_max_px: 0.0", "data.bump_max_px: must be a number > 0"),
                              ("clip: 1.0", "clipp: 1.0", "train.clipp: unknown key")]:
        (tmp_path / "bad.yaml").write_text(shipped.replace(old, new))
        with pytest.raises(ValueError, match=re.escape(f"bad.yaml: {message}")):
            load_config(tmp_path / "bad.yaml")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("flow_pretrain*.yaml")) + sorted((CONFIGS / "dev").glob("flow_*.yaml")),
                         ids=lambda p: p.name)
def test_every_flow_recipe_is_a_valid_config(path):
    cfg = load_config(path)
    assert cfg["train"]["steps"] >= 1 and cfg["data"]["size"] % 16 == 0


def test_the_attention_starts_at_the_configured_temperature():
    from hmrm.flow.gru_aofe import GRUAOFE, FlowConfig

    for t in (10.0, 30.0):
        assert float(GRUAOFE(FlowConfig(attention_temperature=t)).attention.log_temperature.exp()) == pytest.approx(t)


def test_loader_workers_do_not_change_the_run(tmp_path):
    """Pairs and warm starts made in a worker process give bit-identical training."""
    cfg = _tiny_cfg()
    train(cfg, tmp_path / "a", progress=False, device="cpu", workers=0)
    train(cfg, tmp_path / "b", progress=False, device="cpu", workers=1)
    a = torch.load(tmp_path / "a" / "gru_aofe.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "gru_aofe.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads((tmp_path / "b" / "gru_aofe.json").read_text())
    assert meta["device"] == "cpu" and meta["workers"] == 1


def test_step_batches_match_the_pair_stream():
    from hmrm.flow.facepairs import FacePairConfig, FacePairDataset
    from hmrm.flow.synthetic import PairConfig, PairDataset
    from hmrm.flow.train import StepBatches

    cfg = _tiny_cfg()
    assert cfg["data"]["generator"] == "faces"  # the shipped recipe trains on face-domain pairs
    f1, f2, flow, valid, init = StepBatches(cfg)[3]
    data = cfg["data"]
    wide = FacePairConfig(size=32, face_share=data["face_share"], bump_px=(FacePairConfig.bump_px[0], data["bump_max_px"]))
    ref = FacePairDataset(wide, seed=data["seed"], layered_share=data["layered_share"]).batch(3 * 2, 2)
    assert torch.equal(f1, ref[0]) and torch.equal(flow, ref[2]) and torch.equal(valid, ref[3])
    assert init.shape == flow.shape
    # the recipe's wider deformations reach the pairs: without the key, the generator's default range
    del data["bump_max_px"]
    narrow = FacePairDataset(FacePairConfig(size=32, face_share=data["face_share"]), seed=data["seed"],
                             layered_share=data["layered_share"]).batch(3 * 2, 2)
    assert torch.equal(StepBatches(cfg)[3][2], narrow[2]) and not torch.equal(narrow[2], ref[2])
    del data["generator"], data["face_share"], data["layered_share"]  # a config from before: layered pairs
    f1, f2, flow, valid, init = StepBatches(cfg)[3]
    ref = PairDataset(PairConfig(size=32), seed=data["seed"]).batch(3 * 2, 2)
    assert torch.equal(f1, ref[0]) and torch.equal(flow, ref[2])


def test_cuda_request_without_cuda_is_explained(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        train(_tiny_cfg(), tmp_path / "run", progress=False, device="cuda")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_shipped_weights_load_and_their_learned_parts_act():
    """The weights in hmrm/flow/weights/ are hash-checked and record how both stages were made; the GRU
    moves the flow away from its warm start by a sub-pixel amount, and so does the refinement stage after it.
    (How accurate they are is benchmarks/flow_bench.py's business.)"""
    import numpy as np

    from hmrm.data.synthme import load_frame, tiny_synthme
    from hmrm.flow import classic_flow

    info = weight_info()
    for stage in (info, info["first_stage"]):
        assert stage["command"].startswith("hmrm flow train") and stage["steps"] == stage["config"]["train"]["steps"]
    model = load_pretrained()
    assert model.config.refine and not model.training
    s = tiny_synthme()[0]
    a, b = load_frame(s.onset_path), load_frame(s.apex_path)
    full, gru, dis = model.estimate(a, b), model.estimate(a, b, refine=False), classic_flow(a, b, "dis_tuned")
    assert full.shape == dis.shape and np.isfinite(full).all()
    for moved in (np.linalg.norm(full - gru, axis=-1), np.linalg.norm(gru - dis, axis=-1)):
        assert 1e-3 < moved.mean() < 0.5  # an untrained part would change nothing (test_flow_refine.py, chapter 03)


def test_the_shipped_recipe_is_the_one_the_shipped_weights_record():
    """configs/flow_pretrain.yaml (first stage) and configs/flow_pretrain_refine.yaml (second stage, on the
    first's frozen GRU) rebuild the weights that ship: their .json records exactly these two configs."""
    info = weight_info()
    first, second = load_config(CONFIGS / "flow_pretrain.yaml"), load_config(CONFIGS / "flow_pretrain_refine.yaml")
    assert info["first_stage"]["config"] == first and info["config"] == second
    assert first["data"]["generator"] == "faces" and not first["model"]["refine"] and second["model"]["refine"]
    out = info["first_stage"]["command"].split("--out ")[1].split()[0]
    assert second["train"]["frozen_gru"] == out  # the second stage reads the folder the first wrote


def test_a_second_stage_trains_only_a_fresh_refinement_stage_on_a_frozen_gru(tmp_path):
    """``train.frozen_gru``: every part but the refinement stage comes from the given weights and does
    not change; the refinement stage starts fresh and learns."""
    first = _tiny_cfg()
    first["train"]["steps"] = 1
    train(first, tmp_path / "stage1", progress=False)
    second = _tiny_cfg("flow_pretrain_refine")
    second["train"].update(steps=3, frozen_gru=str(tmp_path / "stage1"))
    train(second, tmp_path / "stage2", progress=False)
    a, b = load_pretrained("gru_aofe", tmp_path / "stage1"), load_pretrained("gru_aofe", tmp_path / "stage2")
    assert a.refiner is None and b.refiner is not None  # the first stage trains no refinement stage
    assert weight_info("gru_aofe", tmp_path / "stage2")["first_stage"]["sha256"] == weight_info("gru_aofe", tmp_path / "stage1")["sha256"]
    torch.manual_seed(second["train"]["seed"])
    fresh = type(b)(b.config)  # the seeded fresh network the second stage starts from
    sa, sb, sf = a.state_dict(), b.state_dict(), fresh.state_dict()
    gru = list(sa)
    assert gru and all(torch.equal(sa[k], sb[k]) for k in gru)
    assert any(not torch.equal(sa[k], sf[k]) for k in gru)  # the GRU was loaded, not re-initialised
    refiner = [k for k in sb if k.startswith("refiner.")]
    assert any(not torch.equal(sb[k], sf[k]) for k in refiner)  # the fresh stage trained
    other = _tiny_cfg("flow_pretrain_refine")
    other["model"]["hidden"] = 8
    other["train"]["frozen_gru"] = str(tmp_path / "stage1")
    with pytest.raises(ValueError, match="another model \\(hidden differ"):
        train(other, tmp_path / "stage3", progress=False)
    other = _tiny_cfg("flow_pretrain_refine")
    other["model"]["refine"] = False
    other["train"]["frozen_gru"] = str(tmp_path / "stage1")
    from hmrm.flow.train import check_config

    with pytest.raises(ValueError, match="needs model.refine: true"):
        check_config(other)


def test_the_do_no_harm_term_counts_from_its_step():
    """train.harm_from_step: before it the loss is the plain one, from it on the "do no harm" term adds
    (an untrained GRU's corrections are guesses, and a term that costs them from step 0 held it at DIS)."""
    from hmrm.flow.train import StepBatches, model_and_optimiser, train_step

    cpu = torch.device("cpu")
    cfg = _tiny_cfg()
    cfg["train"].update(harm_weight=0.5, harm_from_step=3)
    batch = StepBatches(cfg)[0]

    def first_loss(step: int) -> float:
        model, opt, sched = model_and_optimiser(cfg, cpu)  # seeded: the same model each time
        return train_step(model, opt, sched, batch, cfg["train"], cpu, step)[0]

    before, after = first_loss(2), first_loss(3)
    cfg["train"]["harm_weight"] = 0.0
    assert before == first_loss(3) and after > before
