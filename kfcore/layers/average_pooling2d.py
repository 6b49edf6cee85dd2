"""AveragePooling2D: the mean of each window, a smoother way to shrink an image than taking the maximum."""

from kfcore.layers.pooling import Pooling2D


class AveragePooling2D(Pooling2D):
    name = "AveragePooling2D"
    order = 65
    abbreviation = "AvgPool"
