"""Fixtures shared by the HUD test modules (pytest finds them by ``from hud_fixtures import *``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def real_factory(model):
    """make_explainer on the module's ``model``, each key traced once for the whole module (tests stay fast)."""
    from carla_agent.hud.explainers import model_explainer_factory

    real, built = model_explainer_factory(model), {}

    def factory(key):
        if key not in built:
            built[key] = real(key)
        return built[key]

    return factory


@pytest.fixture(autouse=True)
def _shared_explainers(real_factory, monkeypatch):
    """Every HUD the test builds gets the module's shared explainers."""
    monkeypatch.setattr("carla_agent.hud.attention.model_explainer_factory", lambda model: real_factory)
