"""Shared test fixtures: seeded generators, device lists, the shared data folder, a private
synthetic:tiny dataset per test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import claus_ext
from tests.realdata import (  # noqa: F401  (the real-format fixtures, for every test module)
    i3d_weights,
    real_custom,
    real_jhmdb,
    real_ucf24,
    real_videos,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLAUS_SHARED", REPO.parent / "shared"))


def cuda_ready() -> bool:
    return torch.cuda.is_available() and claus_ext.has_cuda()


requires_cuda = pytest.mark.skipif(not cuda_ready(), reason="needs a GPU and a CUDA build of claus")


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent")
    return SHARED


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A synthetic-data cache folder of the module's own."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def ds(cache):
    """synthetic:tiny generated into the module's cache (modules may define their own `ds`)."""
    from claus.data import load_dataset

    return load_dataset("synthetic", preset="tiny", cache_dir=cache)
