"""Ready-made layer stacks for the Model page: a starting point that builds on the data it is meant for.

The output layer is never part of a preset: the studio adds it from the task (softmax over the classes,
a sigmoid unit, or a linear unit for regression).
"""

from __future__ import annotations

from dataclasses import dataclass

from kfcore.spec import LayerSpec


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    description: str
    layers: tuple[dict, ...]

    def build(self) -> list[LayerSpec]:
        """Fresh LayerSpecs, so editing the result never changes the preset."""
        return [LayerSpec(**layer) for layer in self.layers]


PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset(
            "mlp",
            "Tutorial MLP",
            "One hidden layer of 64 ReLU units, as in the Keras beginner tutorial; works on any data.",
            ({"type": "Dense", "units": 64, "activation": "relu"},),
        ),
        Preset(
            "convnet",
            "Small convnet",
            "Two convolution + pooling blocks, then dropout; for images (8×8 digits up to 32×32 photos).",
            (
                # padding "same" keeps 8×8 digits at 8→4→2 pixels; "valid" would shrink them below 1×1.
                {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu", "padding": "same"},
                {"type": "MaxPooling2D", "pool_size": 2},
                {"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu", "padding": "same"},
                {"type": "MaxPooling2D", "pool_size": 2},
                {"type": "Flatten"},
                {"type": "Dropout", "rate": 0.5},
            ),
        ),
        Preset(
            "playground",
            "Playground 2-8-8",
            "Two small tanh layers, like TensorFlow Playground; for the 2-D sets (circle, xor, spiral…).",
            (
                {"type": "Dense", "units": 8, "activation": "tanh"},
                {"type": "Dense", "units": 8, "activation": "tanh"},
            ),
        ),
    )
}
