"""The vocabulary every layer shares, below all of them.

- :mod:`.layout` — :class:`~.layout.ChannelLayout`, the order of every per-channel array;
- :mod:`.bn_layers` — which BatchNorm layers are recorded and pruned, and their layout;
- :mod:`.lr_clock` — steps → cumulative learning rate, the forecasters' second time axis;
- :mod:`.metrics` — how two prune masks compare (IoU, Hamming distance, Early-Bird's point).

The store, the recorder, the engine, ``compare`` and the pipeline all sit above these modules,
and these import nothing from the package but :mod:`forecastprune.errors` and
:mod:`forecastprune._util` — so no layer has to reach up or sideways for them.
"""
