"""Checks on the trees of a loaded gradient-boosting model, before scikit-learn walks them.

scikit-learn's ``TreePredictor`` walks its ``nodes`` array in compiled code without bounds
checks (which is why skops leaves the type untrusted by default): a child index outside the
array or a feature index past the input's columns reads arbitrary memory, and a cycle loops
forever. A model file is data from wherever the user got it, so :func:`check_trees` proves,
tree by tree, that prediction stays inside its arrays and ends: every split has two children
inside the node array, the root has no parent and every other node exactly one (so the walk from
the root reaches no node twice: it ends at a leaf within depth ≤ the node count), every split
reads a feature the model was fitted on, and there are no categorical splits (the
features forecastprune computes are all numeric, and the categorical path indexes further
unchecked arrays).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ForecasterError


def check_estimator(estimator: Any, n_features: int, where: str) -> None:
    """Raise unless ``estimator`` is a fitted regressor whose trees are safe to walk.

    Args:
        estimator: what the model file holds under ``estimator``.
        n_features: the number of feature columns the forecaster will pass.
        where: the file, for messages.

    Raises:
        ForecasterError: naming the file and the first problem found.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    if not isinstance(estimator, HistGradientBoostingRegressor):
        raise ForecasterError(
            f"{where} holds a {type(estimator).__name__}, not a HistGradientBoostingRegressor; "
            "refit it with `forecastprune fit-forecaster --kind gbr`"
        )
    predictors = getattr(estimator, "_predictors", None)
    if not isinstance(predictors, list) or not predictors:
        raise ForecasterError(
            f"{where} holds an unfitted regressor (no trees); fit one with "
            "`forecastprune fit-forecaster --kind gbr`"
        )
    _check_fitted_state(estimator, n_features, where)
    for iteration, trees in enumerate(predictors):
        if not isinstance(trees, list) or len(trees) != 1:
            raise ForecasterError(
                f"{where}: boosting iteration {iteration} must hold one tree "
                "(a single-output regressor)"
            )
        check_tree(trees[0], n_features, f"{where}: tree {iteration}")


def _check_fitted_state(estimator: Any, n_features: int, where: str) -> None:
    fitted = getattr(estimator, "n_features_in_", None)
    if fitted != n_features:
        raise ForecasterError(
            f"{where} was fitted on {fitted!r} features; forecastprune passes {n_features}"
        )
    if getattr(estimator, "n_trees_per_iteration_", None) != 1:
        raise ForecasterError(f"{where} does not hold a single-output regressor")
    if getattr(estimator, "_in_fit", False):
        raise ForecasterError(f"{where} was saved in the middle of a fit")
    if getattr(estimator, "_preprocessor", None) is not None:
        raise ForecasterError(
            f"{where} uses categorical features, which forecastprune never computes"
        )
    baseline = np.asarray(getattr(estimator, "_baseline_prediction", np.nan))
    if baseline.size != 1 or baseline.dtype.kind != "f" or not np.isfinite(baseline).all():
        raise ForecasterError(f"{where} holds no finite baseline prediction")


def check_tree(predictor: Any, n_features: int, where: str) -> None:
    """Raise unless one ``TreePredictor`` is a finite tree over ``n_features`` numeric columns.

    Raises:
        ForecasterError: naming the tree and the first bad node.
    """
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = getattr(predictor, "nodes", None)
    if (
        not isinstance(nodes, np.ndarray)
        or nodes.dtype != PREDICTOR_RECORD_DTYPE
        or nodes.ndim != 1
        or len(nodes) == 0
    ):
        raise ForecasterError(f"{where} has no node array of scikit-learn's node type")
    leaf = nodes["is_leaf"].astype(bool)
    split = np.flatnonzero(~leaf)
    children = np.concatenate([nodes["left"][split], nodes["right"][split]]).astype(np.int64)
    bad = children[(children < 0) | (children >= len(nodes))]
    if bad.size:
        raise ForecasterError(
            f"{where} points to node {int(bad[0])} outside its "
            f"{len(nodes)} nodes; the file is damaged or crafted"
        )
    counts = np.bincount(children, minlength=len(nodes))
    if len(children) != len(nodes) - 1 or counts[0] != 0 or (counts[1:] != 1).any():
        raise ForecasterError(
            f"{where} is not a tree (a node is reached twice, never, or in a "
            "cycle); the file is damaged or crafted"
        )
    features = nodes["feature_idx"][split].astype(np.int64)
    if ((features < 0) | (features >= n_features)).any():
        raise ForecasterError(
            f"{where} splits on feature {int(features.max())} of "
            f"{n_features}; the file is damaged or crafted"
        )
    if nodes["is_categorical"][split].any():
        raise ForecasterError(
            f"{where} has categorical splits, which forecastprune's numeric features never need"
        )
    if not np.isfinite(nodes["value"][leaf]).all():
        raise ForecasterError(f"{where} has leaves without finite values")
