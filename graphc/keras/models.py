"""``keras.models``: the model classes and whole-model saving."""
from .saving import load_model, model_from_config, save_model  # noqa: F401
from .sequential import Sequential  # noqa: F401
from .training import Model  # noqa: F401


def model_from_json(json_string: str, custom_objects=None):
    """A model made again from ``model.to_json()`` (untrained: weights are not in the JSON)."""
    import json
    return model_from_config(json.loads(json_string), custom_objects)
