"""Deploy stage: Lava process graphs, the fast bit-exact simulator, verification and hygiene for Lava runs."""
