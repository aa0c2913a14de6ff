"""Fast failure signals: a rollout judged failed by its new pods, before the progress deadline."""
