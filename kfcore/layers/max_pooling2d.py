"""MaxPooling2D: the largest value in each window, so a pattern counts wherever in the window it is."""

from kfcore.layers.pooling import Pooling2D


class MaxPooling2D(Pooling2D):
    name = "MaxPooling2D"
    order = 60
    abbreviation = "MaxPool"
