"""How exact is SynthME's ground-truth flow, per bank photo?

For every bank photo, renders its clips of the default configuration without sensor noise and
illumination drift, warps the apex frame by the ground-truth flow (bicubic) and measures the mean
absolute difference to the onset frame on face pixels (grey levels, 0-255). For scale it prints
the same with no warp and with 80 % of the true flow, plus the render time per clip.

    .venv/bin/python benchmarks/synthme_gt_check.py [--clips N] [--preset default]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from hmrm.data.synthme import RenderFace, SynthConfig, make_specs, prepare_bank_faces, render_clip
from hmrm.flow import warp_array


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=3, help="clips per photo (default 3)")
    ap.add_argument("--preset", default="default")
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
    print(f"SynthME ground-truth check, preset {args.preset!r}, {len(rows)} clips (noise and lighting off)")
    print(f"{'photo':<11} {'clips':>5} {'peak px':>8} {'GT warp':>8} {'0.8xGT':>8} {'no warp':>8} {'ms/frame':>9}")
    for pid in dict.fromkeys(r[0] for r in rows):
        r = np.array([x[2:] for x in rows if x[0] == pid])
        print(f"{pid:<11} {len(r):>5} {r[:, 0].mean():>8.2f} {r[:, 1].mean():>8.3f} {r[:, 2].mean():>8.3f} {r[:, 3].mean():>8.3f} {1e3 * r[:, 4].mean():>9.1f}")
    r = np.array([x[2:] for x in rows])
    print(f"{'all':<11} {len(r):>5} {r[:, 0].mean():>8.2f} {r[:, 1].mean():>8.3f} {r[:, 2].mean():>8.3f} {r[:, 3].mean():>8.3f} {1e3 * r[:, 4].mean():>9.1f}")
    print(f"worst clip GT residual: {r[:, 1].max():.3f} grey levels; GT better than no warp in {int((r[:, 1] < r[:, 3]).sum())}/{len(r)} clips")


if __name__ == "__main__":
    main()
