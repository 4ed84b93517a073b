"""Population trials: K trials of one sweep (same method, architecture and data order; each
its own λ₁, λ₂ and lr) trained together in one vmapped pass, told as K Optuna trials.

The trainer (``PopulationTrainer``) needs torch alone; the Optuna side is in
:mod:`regcore.worker.population._runner` (``PopulationRun``) and ``auto``'s choice of K in
:mod:`regcore.worker.population._size`.
"""

from regcore.worker.population._optim import PopulationOptimizer
from regcore.worker.population._stack import Stack
from regcore.worker.population._trainer import Member, PopulationTrainer

__all__ = ["Member", "PopulationOptimizer", "PopulationTrainer", "Stack"]
