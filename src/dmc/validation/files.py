"""File names of a validation run directory (what `dmc validate --out DIR` writes, and what
`dmc report DIR` reads).

- ``validate.json``: the manifest (student, pool, eval set, experiments, settings, timings).
- ``scores/``: the initial student's scores (dmc.scoring: datasets.json / .csv, samples.parquet).
- ``e1.json``: E1 summary: pilots, per-dataset accuracy, correlations (all methods), per-seed
  Spearman, metric directions.
- ``e1_pilots.parquet``: one row per (dataset, seed): accuracy, status, and each metric's value.
- ``e1_correlations.csv``: one row per (metric, method): rho, CI, n, signed rho, reason.
- ``e2.json``: one entry per selector (metric): what it chose and the accuracy reached.
- ``e3.json``: per strategy: final accuracy, accuracy curve, mixture timeline, scores over time.
- ``pilots/``: the pilot cache, one run directory per pilot.
"""

MANIFEST = "validate.json"
SCORES_DIR = "scores"
E1_JSON = "e1.json"
E1_PILOTS = "e1_pilots.parquet"
E1_CORRELATIONS = "e1_correlations.csv"
E2_JSON = "e2.json"
E3_JSON = "e3.json"
PILOTS_DIR = "pilots"
DATA_DIR = "data"
