"""The pruning engine: scores → keep masks → a physically smaller model.

* :class:`PruneSpec` (``spec``) holds every prune setting, validated once;
* :func:`select_channels` (``threshold``, pure numpy) turns per-channel scores into a
  :class:`PruneDecision` under a spec;
* :func:`plan_channels` (``coupling``) says which channels may be pruned and which move
  together under the ``seed`` or ``grouped`` policy, from the channel flow that
  :func:`trace_flow` (``flow``) follows through one forward pass;
* :func:`prune_model` (``surgery``) cuts a copy of the model, folding β into the next layers;
* :func:`rebuild_optimizer` (``optim``) carries an optimizer over to the pruned model;
* :func:`save_pruned` / :func:`load_pruned` (``persist``) store a pruned model without pickles;
* :func:`plan_blocks` (``blocks``) finds the residual blocks that can be removed whole,
  :func:`select_blocks` (``block_rule``, with :class:`BlockSpec`) picks them from scores and
  :func:`prune_blocks` (``block_surgery``) removes them — depth pruning, composable with the
  channel cut;
* :func:`model_stats` / :func:`compare_stats` (``stats``) report params, MACs and latency
  (:func:`count_params`, :func:`count_macs`, :func:`measure_latencies`).

Names are imported on first use, so the numpy-only threshold never pulls in torch.
"""

from __future__ import annotations

from .._util import lazy_attributes

_LAZY = {
    "select_channels": "threshold",
    "PruneDecision": "threshold",
    "LayerReport": "threshold",
    "plan_channels": "coupling",
    "ChannelPlan": "coupling",
    "POLICIES": "spec",
    "PruneSpec": "spec",
    "trace_flow": "flow",
    "ChannelFlow": "flow",
    "prune_model": "surgery",
    "surgery_record": "surgery",
    "SurgeryRecord": "surgery",
    "rebuild_optimizer": "optim",
    "save_pruned": "persist",
    "load_pruned": "persist",
    "plan_blocks": "blocks",
    "BlockPlan": "blocks",
    "Block": "blocks",
    "BlockSpec": "block_rule",
    "BlockDecision": "block_rule",
    "block_scores": "block_rule",
    "select_blocks": "block_rule",
    "prune_blocks": "block_surgery",
    "model_stats": "stats",
    "count_macs": "stats",
    "count_params": "stats",
    "measure_latencies": "stats",
    "compare_stats": "stats",
    "ModelStats": "stats",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY)
