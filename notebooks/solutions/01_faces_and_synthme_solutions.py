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
# Parameters (papermill can override these): the same as chapter 01's
PHOTO_ID = "obama_2"        # the face-bank photo of the chapter's sections 2-5
SUBJECTS = 2                # bank subjects whose clip specs exercise 1 draws
SEED = 0

# %% [markdown]
# # Solutions · 01 Faces and SynthME
#
# Solutions of the exercises at the end of `notebooks/01_faces_and_synthme.ipynb`. Try them there
# first. The first cell fetches the face bank and the landmarks of its faces (cached by the chapter).

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np

from hmrm.data import facebank
from hmrm.data.synthme import ClipMotion, RenderFace, SynthConfig, make_specs, prepare_bank_faces
from hmrm.face import align_face, eye_centres, eye_template, region_boxes
from hmrm.viz import add_flow_wheel, draw_landmarks, draw_regions, flow_to_color

photos = facebank.fetch_face_bank(verbose=False)
bank_faces = prepare_bank_faces(photos, verbose=False)   # 68 landmarks per photo, detected once and cached
people = list(facebank.subjects(photos))
print(len(bank_faces), "bank faces of", len(people), "people")

# %% [markdown]
# ## Exercise 1: a harder SynthME
#
# *The `hard` preset changes some of the ranges clips are drawn from. Without rendering anything, draw
# the clip specs of both presets for the chapter's subjects with `make_specs` and compare the peak
# displacements, the head motion, the noise and how often a blink happens.*
#
# `make_specs` draws every random choice of a build (a `ClipSpec` per clip) before a single frame is
# rendered, so the comparison costs nothing. Head motion here is the largest head translation over a
# clip, in pixels.

# %%
chosen = [f for f in bank_faces if f.person in people[:SUBJECTS]]
stats = {}
for preset in ("default", "hard"):
    specs = make_specs(chosen, SynthConfig.preset(preset, seed=SEED))
    stats[preset] = {
        "peak (px)": np.array([s.peak_px for s in specs]),
        "head shift (px)": np.array([np.hypot(s.head["tx"], s.head["ty"]).max() for s in specs]),
        "noise (grey levels)": np.array([s.noise_sigma for s in specs]),
        "blink": np.array([s.blink is not None for s in specs], dtype=float),
    }
print(f"{'':<20}" + "".join(f"{p:>24}" for p in stats))
for key in stats["default"]:
    cells = [f"{v[key].mean():.2f} ({v[key].min():.2f}-{v[key].max():.2f})" if key != "blink"
             else f"{100 * v[key].mean():.0f} % of clips" for v in stats.values()]
    print(f"{key:<20}" + "".join(f"{c:>24}" for c in cells))
print("hard preset overrides:", {k: v for k, v in SynthConfig.preset("hard").to_json().items()
                                  if v != SynthConfig().to_json()[k]})

fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, key in zip(axes, ("peak (px)", "head shift (px)", "noise (grey levels)")):
    bins = np.linspace(0, max(v[key].max() for v in stats.values()), 16)
    for preset, v in stats.items():
        ax.hist(v[key], bins=bins, alpha=0.6, label=preset)
    ax.set_xlabel(key); ax.set_ylabel("clips")
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# **Answer.** `hard` halves the expression (peaks drawn from a range half as wide and half as high),
# while the nuisances grow: more head motion, more sensor noise, more blinks. The expression is then
# often *smaller* than the head motion around it, so a recogniser must separate the two rather than
# read the largest motion, and flow estimators work nearer their noise floor (chapter 00's exercise 1).

# %%
hard, easy = stats["hard"], stats["default"]
assert hard["peak (px)"].max() <= SynthConfig.preset("hard").peak_px[1] < easy["peak (px)"].max()
assert hard["peak (px)"].mean() < easy["peak (px)"].mean() and hard["noise (grey levels)"].mean() > easy["noise (grey levels)"].mean()
print("exercise 1 checked")

# %% [markdown]
# ## Exercise 2: a blink at the apex
#
# *Give the clip of section 5 a full-strength blink centred on its apex and compare its ground-truth
# flow onset -> apex with the blink-free one, around the eyes and around the mouth. How large is the
# blink's motion next to the expression's, and what does that mean for a recogniser?*
#
# The clip is the chapter's: the first happiness clip drawn for `PHOTO_ID`. `ClipMotion` is the motion
# model `render_clip` uses; its `gt_flow` gives the exact flow without rendering any frame.

# %%
bank_face = next(f for f in bank_faces if f.photo_id == PHOTO_ID)
face = RenderFace(bank_face, 256)
spec = next(s for s in make_specs([bank_face], SynthConfig(seed=SEED)) if s.emotion == "happiness")
variants = {"no blink": replace(spec, blink=None),
            "full blink at apex": replace(spec, blink={"start": spec.apex - 4, "length": 8, "strength": 1.0})}
flows = {name: ClipMotion(face, sp).gt_flow(sp.onset, sp.apex) for name, sp in variants.items()}
change = np.linalg.norm(flows["full blink at apex"] - flows["no blink"], axis=-1)   # the blink's own motion

boxes = region_boxes(face.landmarks, 256)
def region(name):
    x0, y0, x1, y1 = boxes[name]
    return (slice(y0, y1), slice(x0, x1))

expression = np.linalg.norm(flows["no blink"], axis=-1)
print(f"expression peak {spec.peak_px:.2f} px (AU {spec.aus}); largest flow without blink {expression.max():.2f} px")
for name in ("right_eye", "left_eye", "mouth"):
    r = region(name)
    print(f"{name:<10} flow without blink: max {expression[r].max():.2f} px | the blink adds: max {change[r].max():.2f} px, "
          f"mean {change[r].mean():.3f} px")

outside = np.ones_like(change, dtype=bool)
for name in ("right_eye", "left_eye"):
    outside[region(name)] = False
print(f"outside the eye boxes the blink adds up to {change[outside].max():.2f} px (TPS spreading the lid motion)")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, (name, f) in zip(axes, flows.items()):
    top = float(np.ceil(np.linalg.norm(f, axis=-1).max()))   # each panel saturates at its own largest motion
    ax.imshow(flow_to_color(f, max_mag=top)); add_flow_wheel(ax, top)
    draw_regions(ax, boxes, labels=False); ax.set_title(f"GT flow, {name} ({top:g} px = full)", fontsize=9)
im = axes[2].imshow(change, cmap="magma")
fig.colorbar(im, ax=axes[2], fraction=0.046, label="px")
axes[2].set_title("|difference|: the blink's motion", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# **Answer.** The blink moves the upper lids by a good part of the eye opening, many times the
# expression's peak (compare the printed maxima). It is concentrated on the eyes, but not confined to
# them: the thin-plate spline that turns landmark motion into a dense field spreads part of the lid
# motion over the cheeks below (the difference map), and a little reaches the mouth box. That spread
# is a property of this animation model, not of real blinks; it is largest at full strength.
#
# For a recogniser the lesson holds either way. A blink can be the largest motion in a clip and says
# nothing about the emotion, and SynthME puts blinks in every class, as real recordings do. A model
# that reads "most motion" learns blinks; it has to learn where on the face motion matters, which is
# what HMRM's region fusion (chapter 07) is for.

# %%
eyes = max(change[region("right_eye")].max(), change[region("left_eye")].max())
eyes_mean = np.mean([change[region("right_eye")].mean(), change[region("left_eye")].mean()])
assert eyes > spec.peak_px, "the blink should move the eyelids more than the expression moves anything"
assert eyes_mean > 10 * change[region("mouth")].mean(), "the blink's motion should be concentrated on the eyes"
print("exercise 2 checked")

# %% [markdown]
# ## Exercise 3: a turned head
#
# *Set `PHOTO_ID` to a face of the group photo and look at its landmarks and regions after alignment.
# Which bank faces are turned most, and how does a turn show in the aligned crop?*
#
# A similarity transform can only rotate, scale and shift the image: it puts both eyes on the template
# whatever the pose, but it cannot undo a head turned away from the camera (a rotation *out of* the
# image plane). A turn therefore shows in the aligned crop as a nose tip that is no longer half-way
# between the eyes. We measure that offset in eye distances (0 = frontal, positive = nose towards the
# image's right) and the width ratio of the two eye boxes.

# %%
rows = []
for bf in bank_faces:
    bp = next(p for p in photos if p.photo.photo_id == bf.photo_id)
    aligned = align_face(facebank.load_photo(bp), bf.landmarks, size=256)
    left, right = eye_centres(aligned.landmarks)   # image left, image right
    iod = float(np.linalg.norm(right - left))
    nose = aligned.landmarks[30]   # the nose tip
    b = region_boxes(aligned.landmarks, 256)
    widths = (b["right_eye"][2] - b["right_eye"][0]) / (b["left_eye"][2] - b["left_eye"][0])
    eye_error = float(np.abs(np.array([left, right]) - eye_template(256)).max())
    rows.append((bf.photo_id, (nose[0] - (left[0] + right[0]) / 2) / iod, widths, eye_error, aligned, b))
rows.sort(key=lambda r: -abs(r[1]))
print(f"{'photo':<10} {'nose offset (IOD)':>18} {'eye-box widths (image left / right)':>36} {'eyes off template (px)':>24}")
for pid, off, w, err, *_ in rows:
    print(f"{pid:<10} {off:>18.2f} {w:>36.2f} {err:>24.3f}")

show = rows[:4] + [r for r in rows if r[0] == PHOTO_ID]
fig, axes = plt.subplots(1, len(show), figsize=(3 * len(show), 3.3))
for ax, (pid, off, _, _, aligned, b) in zip(axes, show):
    ax.imshow(aligned.image)
    draw_landmarks(ax, aligned.landmarks, size=4)
    draw_regions(ax, b, labels=False)
    ax.set_xlim(-0.5, 255.5); ax.set_ylim(255.5, -0.5)   # the crop (jaw points may lie outside it)
    ax.set_title(f"{pid}: nose offset {off:+.2f} IOD", fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# **Answer.** The printout ranks the bank by turn. Every face, turned or not, has its eyes exactly on
# the template: that is what the similarity fixes. In the turned ones the nose tip sits well off the
# eyes' midpoint, the far half of the face is foreshortened (the far eye's box is narrower, the far
# cheek and jaw are squeezed), and part of the jaw outline may be hidden, where dlib's landmarks are
# guesses. Motion measured there is foreshortened too, and regions that should match between two
# people do not cover the same skin: one reason the data sets film people facing the camera.

# %%
assert max(r[3] for r in rows) < 1.0, "alignment should put every face's eyes on the template"
assert abs(rows[0][1]) > 0.3 > abs(next(r[1] for r in rows if r[0] == "obama_1")), "the most turned face should be clearly off-frontal"
print(f"exercise 3 checked: most turned {rows[0][0]} ({rows[0][1]:+.2f} IOD)")
