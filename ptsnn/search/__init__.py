"""Hardware-aware architecture search (TNAS-ER's evolutionary search, multi-objective, on Optuna).

A stage above report: it trains (train), converts (convert), runs the fast backend (deploy) and costs the
candidate with the report's energy model (report). Design note: docs/search.md.
"""
