"""Session fixtures for the saliency tests: every method runs on each of these models.

PilotNet, the two-output 120x160 model, the 'same'-padding model with pooling,
the nested model (a Sequential inside a Functional), and a legacy ``.h5`` file
(saved and loaded back with Keras). Builders live in ``saliency_models.py``.
"""

from __future__ import annotations

import warnings

import pytest

from saliency_models import build_nested, build_same_pool, build_two_head


@pytest.fixture(scope="session")
def pilotnet():
    from carla_agent.network.pilotnet import build_pilotnet

    return build_pilotnet(seed=0)


@pytest.fixture(scope="session")
def two_head():
    return build_two_head()


@pytest.fixture(scope="session")
def same_pool():
    return build_same_pool()


@pytest.fixture(scope="session")
def nested():
    return build_nested()


@pytest.fixture(scope="session")
def legacy_h5(tmp_path_factory):
    import keras

    path = tmp_path_factory.mktemp("h5") / "legacy.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_two_head(seed=7).save(str(path))
        return keras.models.load_model(str(path), compile=False)


MODEL_FIXTURES = ("pilotnet", "two_head", "same_pool", "nested", "legacy_h5")


@pytest.fixture(params=MODEL_FIXTURES)
def any_model(request):
    return request.getfixturevalue(request.param)
