"""Population trials: K trials of one sweep (same method, architecture and data order; each
its own λ₁, λ₂ and lr) trained together in one vmapped pass, told as K Optuna trials."""

from worker.population._optim import PopulationOptimizer
from worker.population._runner import PopulationRun
from worker.population._size import choose_size
from worker.population._stack import Stack
from worker.population._trainer import Member, PopulationTrainer

__all__ = [
    "Member",
    "PopulationOptimizer",
    "PopulationRun",
    "PopulationTrainer",
    "Stack",
    "choose_size",
]
