"""Service checks: ``config`` reads services.yaml, ``run`` runs the checks."""
