"""The user attributes a search trial carries in its Optuna study, named once: the engine copies the
evaluation ones to a trial that repeats an evaluated point, the outputs list them all per trial."""

EVALUATION = ("config", "war", "uar", "costs", "checkpoint", "checkpoint_sha256", "train_seconds",
              "convert_seconds", "details")  # what Objective._run records for an evaluated candidate
BOOKKEEPING = ("infeasible", "retry_of", "stale", "surplus", "worker", "duplicate_of", "interrupted")
LISTED = EVALUATION + BOOKKEEPING  # front.json / trials.json keys, in this order
