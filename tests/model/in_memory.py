"""Tenant-days held in arrays, reduced in Python the way the database reduces them
(`aoer.store.models.WindowData`): the trainer's rules tested without a database."""

import hashlib
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from aoer.training import COMPONENTS, Errors, Group, Moments, Summary, Weights

FloatArray = NDArray[np.float64]


def _exact(values: FloatArray) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


def moments(features: FloatArray, outcome: FloatArray) -> Moments:
    """Exact sums over these rows (NaN components as 0)."""
    x = np.where(np.isnan(features), 0.0, features)
    k = len(COMPONENTS)
    return Moments(
        rows=len(outcome),
        x=tuple(_exact(x[:, i]) for i in range(k)),
        xx=tuple(tuple(_exact(x[:, i] * x[:, j]) for j in range(k)) for i in range(k)),
        xy=tuple(_exact(x[:, i] * outcome) for i in range(k)),
        y=_exact(outcome),
        yy=_exact(outcome * outcome),
    )


@dataclass(frozen=True, slots=True)
class Dataset:
    """Tenant-days with a known outcome; missing components are NaN."""

    holdout: NDArray[np.bool_]
    tenant: NDArray[np.int64]
    features: FloatArray  # rows x COMPONENTS
    outcome: FloatArray

    def _complete(self, columns: tuple[str, ...]) -> NDArray[np.bool_]:
        index = [COMPONENTS.index(c) for c in columns]
        return ~np.isnan(self.features[:, index]).any(axis=1)

    async def summary(self) -> Summary:
        present = ~np.isnan(self.features)
        patterns = {
            (bool(h), tuple(bool(p) for p in row))
            for h, row in zip(self.holdout, present, strict=True)
        }
        groups = []
        for holdout, pattern in sorted(patterns):
            rows = (self.holdout == holdout) & (present == np.array(pattern)).all(axis=1)
            groups.append(Group(holdout, pattern, moments(self.features[rows], self.outcome[rows])))
        digest = hashlib.sha256()
        for array in (self.holdout, self.tenant, self.features, self.outcome):
            digest.update(np.ascontiguousarray(array).tobytes())
        return Summary(tuple(groups), digest.hexdigest())

    async def tenants(self, columns: tuple[str, ...]) -> tuple[int, int]:
        complete = self._complete(columns)
        return (
            int(np.unique(self.tenant[complete & ~self.holdout]).size),
            int(np.unique(self.tenant[complete & self.holdout]).size),
        )

    async def holdout_errors(self, weights: Weights, columns: tuple[str, ...]) -> Errors:
        rows = self._complete(columns) & self.holdout
        features = np.where(np.isnan(self.features[rows]), 0.0, self.features[rows])
        prediction = np.clip(float(weights.intercept) + features @ weights.vector(), 0.0, 100.0)
        outcome = self.outcome[rows]
        error = outcome - prediction
        return Errors(
            rows=int(rows.sum()),
            squared=_exact(error * error),
            absolute=_exact(np.abs(error)),
            y=_exact(outcome),
            yy=_exact(outcome * outcome),
        )
