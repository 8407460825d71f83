"""Training: the fusion model (more trainers in later issues)."""
