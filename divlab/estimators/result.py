"""One result type for every estimator (closed form, quadrature, Monte Carlo, samples)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Estimate"]


@dataclass
class Estimate:
    """A divergence value with its provenance and uncertainty.

    - ``value``: 0-dim (or batched) tensor in the divergence's unit (nats for the log-based ones,
      see :attr:`DivergenceSpec.unit`), differentiable where the inputs are.
    - ``stderr``: statistical standard error (Monte Carlo / sample estimators); 0 otherwise.
    - ``error``: deterministic numerical error estimate (quadrature: |I_h − I_2h|); 0 for
      closed forms.
    - ``n``: number of samples (sampled estimators) or grid points (quadrature).
    - ``estimator``: "closed_form" | "quadrature" | "mc" | "samples" | ...
    - ``reason``: why the value is infinite (or other caveat), in words; ``None`` when finite.
    - ``info``: extra diagnostics (grid masses, iterations, convergence status, ...).
    """

    value: torch.Tensor
    estimator: str
    divergence: str
    params: dict = field(default_factory=dict)
    stderr: float = 0.0
    error: float = 0.0
    n: int = 0
    reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value.detach().reshape(()).cpu()) if isinstance(self.value, torch.Tensor) else float(self.value)

    @property
    def uncertainty(self) -> float:
        """What an error bar should show: the standard error if sampled, else the numerical error."""
        return float(self.stderr) if self.stderr else float(self.error)

    @property
    def is_finite(self) -> bool:
        return math.isfinite(float(self))

    @property
    def reliable(self) -> bool:
        """False when the estimator says its error bar does not hold (``info["unreliable"]``,
        with ``info["warning"]`` in words; e.g. a Monte Carlo estimate whose importance weights
        have Pareto k̂ > 0.7). The stderr is still the computed one; show "unreliable" instead."""
        return not bool(self.info.get("unreliable", False))

    def as_dict(self) -> dict:
        v = float(self)
        return {
            "divergence": self.divergence, "params": dict(self.params), "estimator": self.estimator,
            "value": v if math.isfinite(v) else ("inf" if v > 0 else ("-inf" if v < 0 else "nan")),
            "stderr": float(self.stderr), "error": float(self.error), "n": int(self.n), "reason": self.reason,
            "info": {k: (float(x) if isinstance(x, torch.Tensor) and x.numel() == 1 else x) for k, x in self.info.items()},
        }

    def __repr__(self) -> str:
        unc = f" ± {self.uncertainty:.2g}" if self.uncertainty else ""
        why = f" ({self.reason})" if self.reason else ""
        from ..divergences.registry import _REGISTRY, unit_suffix

        spec = _REGISTRY.get(self.divergence)
        u = unit_suffix(spec.unit) if spec is not None else ""
        if not self.reliable:  # no "± se": the error bar does not hold
            k = self.info.get("khat")
            kk = f": k̂={k:.2g}" if isinstance(k, (int, float)) and math.isfinite(k) else ""
            return (f"Estimate({self.divergence}{self.params or ''} = {float(self):.10g}{u} (unreliable{kk}) "
                    f"via {self.estimator}{why})")
        return f"Estimate({self.divergence}{self.params or ''} = {float(self):.10g}{unc}{u} via {self.estimator}{why})"
