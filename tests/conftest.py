from __future__ import annotations

import os

import numpy as np
import pytest
import torch

# Without a GPU, Triton's kernels can only run through its CPU interpreter, which must be chosen
# before Triton is first imported: the tests of the "triton" selective-scan backend need it.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def bank_photos():
    from hmrm.data.facebank import fetch_face_bank

    return fetch_face_bank(verbose=False)


@pytest.fixture(scope="session")
def bank_faces(bank_photos):
    from hmrm.data.synthme import prepare_bank_faces

    return prepare_bank_faces(bank_photos, verbose=False)


@pytest.fixture(scope="session")
def render_face(bank_faces):
    from hmrm.data.synthme import RenderFace

    return RenderFace(bank_faces[0], 256)


@pytest.fixture(scope="session")
def tiny_synthme(tmp_path_factory):
    """A two-subject SynthME build (tiny preset), shared by the tests that only read it."""
    from hmrm.data.synthme import SynthConfig, build_synthme

    root = tmp_path_factory.mktemp("synthme_tiny")
    build_synthme(root, SynthConfig.preset("tiny"), max_subjects=2, progress=False, workers=1)
    return root


@pytest.fixture()
def rng():
    return np.random.default_rng(0)
