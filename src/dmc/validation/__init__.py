"""Validation of the metrics on cheap pilots (DESIGN.md §6): E1 correlations with post-training
accuracy, E2 static selection, E3 dynamic vs static curricula; pilots are cached and run in a
process pool."""

from dmc.validation.correlation import METHODS, Correlation, correlate, correlation_table, headline, seed_agreement
from dmc.validation.pilots import Pilot, PilotCache, run_pilots
from dmc.validation.protocol import E3_STRATEGIES, EXPERIMENTS, ValidateConfig, ValidationResult, pilot_train, validate

__all__ = [
    "E3_STRATEGIES", "EXPERIMENTS", "METHODS", "Correlation", "Pilot", "PilotCache",
    "ValidateConfig", "ValidationResult", "correlate", "correlation_table", "headline", "pilot_train", "run_pilots", "seed_agreement",
    "validate",
]
