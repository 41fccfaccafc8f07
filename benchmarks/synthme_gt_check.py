"""How exact is SynthME's ground-truth flow, per bank photo?

For every bank photo, renders its clips of the default configuration without sensor noise and
illumination drift, warps the apex frame by the ground-truth flow (bicubic) and measures the mean
absolute difference to the onset frame on face pixels (grey levels, 0-255). For scale it prints
the same with no warp and with 80 % of the true flow, plus the render time per clip.

    .venv/bin/python benchmarks/synthme_gt_check.py [--clips N] [--preset default] [--out benchmarks/results/synthme_gt_check.md]

With ``--out`` the table is also written there, with its JSON twin.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from hmrm.data.synthme import RenderFace, SynthConfig, make_specs, prepare_bank_faces, render_clip
from hmrm.flow import warp_array
from hmrm.markdown import markdown_table
from hmrm.resultfiles import write_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=3, help="clips per photo (default 3)")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--out", default=None, help="also write the table (markdown, and its JSON twin) here")
    args = ap.parse_args()
    config = SynthConfig.preset(args.preset)
    faces = prepare_bank_faces(verbose=False)
    specs = make_specs(faces, config)
    rows = []
    for face in faces:
        rf = RenderFace(face, config.size)
        mine = [s for s in specs if s.photo_id == face.photo_id][: args.clips]
        for spec in mine:
            t0 = time.perf_counter()
            frames, flow, _ = render_clip(rf, spec, noise=False, lighting=False)
            dt = time.perf_counter() - t0
            on, apx = frames[spec.onset].astype(np.float32), frames[spec.apex]
            m = rf.fields.face
            res = lambda f: float(np.abs(warp_array(apx, f, mode="bicubic") - on)[m].mean())  # noqa: E731
            rows.append((face.photo_id, spec.sample, spec.peak_px, res(flow), res(0.8 * flow), res(0 * flow), dt / spec.n_frames))
    table = []
    for pid in [*dict.fromkeys(r[0] for r in rows), "all"]:
        r = np.array([x[2:] for x in rows if pid == "all" or x[0] == pid])
        table.append([pid, len(r), f"{r[:, 0].mean():.2f}", f"{r[:, 1].mean():.3f}", f"{r[:, 2].mean():.3f}",
                      f"{r[:, 3].mean():.3f}", f"{1e3 * r[:, 4].mean():.1f}"])
    r = np.array([x[2:] for x in rows])
    text = "\n".join([
        f"SynthME ground-truth check, preset {args.preset!r}, {len(rows)} clips ({args.clips} per bank photo), sensor "
        "noise and illumination drift off: mean absolute grey-level difference (0-255) on face pixels between the "
        "onset frame and the apex frame warped back by the ground-truth flow (bicubic), by 0.8 x that flow, and not "
        "warped; render time per frame (`benchmarks/synthme_gt_check.py`).", "",
        markdown_table(["photo", "clips", "peak px", "GT warp", "0.8 x GT warp", "no warp", "ms / frame"], table,
                       "lrrrrrr"), "",
        f"Worst clip's GT-warp residual: {r[:, 1].max():.3f} grey levels; the GT warp is closer than no warp in "
        f"{int((r[:, 1] < r[:, 3]).sum())} of {len(r)} clips."])
    print(text)
    if args.out:
        write_results(args.out, text + "\n")

if __name__ == "__main__":
    main()
