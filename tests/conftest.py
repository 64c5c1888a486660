"""Shared fixtures: d2l is imported once, and every test starts from a fixed seed."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def d2l():
    from d2l import torch as d2l_torch

    return d2l_torch
